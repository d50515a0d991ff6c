//! The evaluator against Azure's template-functions reference: each
//! example's inputs and the value its "Outputs" table prints.

use serde_json::json;

use super::*;

fn scope() -> Scope {
    Scope {
        subscription: "sub1".into(),
        resource_group: "rg1".into(),
        location: "westeurope".into(),
        deployment: "d1".into(),
        now_unix: 1_764_748_800, // 2025-12-03T08:00:00Z
        nonce: 7,
    }
}

fn ev() -> Evaluator {
    Evaluator {
        params: [
            ("loc".to_string(), json!("westeurope")),
            ("n".to_string(), json!(3)),
        ]
        .into(),
        variables: [
            ("a".to_string(), json!("[variables('b')]")),
            ("b".to_string(), json!(["[parameters('LOC')]"])),
            ("o".to_string(), json!({"Inner": {"x": [10, 20]}})),
            (
                "disks".to_string(),
                json!({"$copy": {"name": "disks", "count": 3, "input": {"name": "[concat('d', copyIndex('disks', 1))]"}}, "$name": "disks"}),
            ),
        ]
        .into(),
        functions: [(
            "contoso.uniquename".to_string(),
            UserFunction {
                parameters: vec!["namePrefix".into()],
                output: json!("[concat(toLower(parameters('namePrefix')), '-fn')]"),
            },
        )]
        .into(),
        scope: scope(),
        budget: Default::default(),
    }
}

fn try_one(s: &str) -> Result<Value, AzureError> {
    ev().eval(&json!(s), &Frame::new("r", None), "p")
}

fn one(s: &str) -> Value {
    try_one(s).unwrap_or_else(|e| panic!("{s}: {}", e.message))
}

#[test]
fn scope_and_resource_functions() {
    assert_eq!(one("[resourceGroup().location]"), json!("westeurope"));
    assert_eq!(one("[resourceGroup().name]"), json!("rg1"));
    assert_eq!(
        one("[resourceId('Microsoft.Network/virtualNetworks/subnets', 'v1', 's1')]"),
        json!("/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/v1/subnets/s1")
    );
    assert_eq!(
        one("[resourceId('otherRG', 'Microsoft.Web/serverfarms', 'p')]"),
        json!("/subscriptions/sub1/resourceGroups/otherRG/providers/Microsoft.Web/serverfarms/p")
    );
    assert_eq!(
        one("[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b24988ac-6180-42a0-ab88-20f7382dd24c')]"),
        json!("/subscriptions/sub1/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c")
    );
    assert_eq!(
        one("[tenantResourceId('Microsoft.Authorization/policyDefinitions', 'p1')]"),
        json!("/providers/Microsoft.Authorization/policyDefinitions/p1")
    );
    assert_eq!(
        one("[extensionResourceId(resourceGroup().id, 'Microsoft.Authorization/locks', 'lock1')]"),
        json!(
            "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Authorization/locks/lock1"
        )
    );
    assert_eq!(
        one("[environment().suffixes.storage]"),
        json!("core.windows.net")
    );
    assert_eq!(one("[environment().name]"), json!("AzureCloud"));
    assert_eq!(one("[subscription().subscriptionId]"), json!("sub1"));
    assert_eq!(
        one("[tenant().tenantId]"),
        json!(crate::model::LAB_TENANT_ID)
    );
    assert_eq!(one("[deployment().name]"), json!("d1"));
    assert_eq!(
        one("[pickZones('Microsoft.Compute', 'virtualMachines', 'westus2')]"),
        json!(["1"])
    );
    assert_eq!(
        one("[pickZones('Microsoft.Compute', 'virtualMachines', 'westus2', 2, 1)]"),
        json!(["2", "3"])
    );
    assert_eq!(
        one("[pickZones('Microsoft.Compute', 'virtualMachines', 'northcentralus')]"),
        json!([])
    );
    assert!(try_one("[managementGroup()]").is_err());
}

/// template-functions-string.md, example by example.
#[test]
fn string_functions() {
    assert_eq!(
        one("[base64('one, two, three')]"),
        json!("b25lLCB0d28sIHRocmVl")
    );
    assert_eq!(
        one("[base64ToString('b25lLCB0d28sIHRocmVl')]"),
        json!("one, two, three")
    );
    assert_eq!(
        one("[base64ToJson(base64('{\"one\": \"a\", \"two\": \"b\"}'))]"),
        json!({"one": "a", "two": "b"})
    );
    assert_eq!(
        one("[dataUri('Hello')]"),
        json!("data:text/plain;charset=utf8;base64,SGVsbG8=")
    );
    assert_eq!(
        one("[dataUriToString('data:;base64,SGVsbG8sIFdvcmxkIQ==')]"),
        json!("Hello, World!")
    );
    assert_eq!(one("[endsWith('abcdef', 'ef')]"), json!(true));
    assert_eq!(one("[endsWith('abcdef', 'F')]"), json!(true));
    assert_eq!(one("[startsWith('abcdef', 'e')]"), json!(false));
    assert_eq!(one("[indexOf('test', 't')]"), json!(0));
    assert_eq!(one("[lastIndexOf('test', 't')]"), json!(3));
    assert_eq!(one("[indexOf('abcdef', 'CD')]"), json!(2));
    assert_eq!(one("[lastIndexOf('abcdef', 'AB')]"), json!(0));
    assert_eq!(one("[indexOf('abcdef', 'z')]"), json!(-1));
    assert_eq!(one("[padLeft('123', 10, '0')]"), json!("0000000123"));
    assert_eq!(one("[padLeft(123, 10, '0')]"), json!("0000000123"));
    assert_eq!(
        one("[replace('123-123-1234', '-', '')]"),
        json!("1231231234")
    );
    assert_eq!(
        one("[replace('123-123-1234', '1234', 'xxxx')]"),
        json!("123-123-xxxx")
    );
    assert_eq!(
        one("[split('one,two,three', ',')]"),
        json!(["one", "two", "three"])
    );
    assert_eq!(
        one("[split('one;two,three', createArray(',', ';'))]"),
        json!(["one", "two", "three"])
    );
    assert_eq!(one("[string(5)]"), json!("5"));
    assert_eq!(
        one("[string(createObject('valueA', 10, 'valueB', 'Example Text'))]"),
        json!("{\"valueA\":10,\"valueB\":\"Example Text\"}")
    );
    assert_eq!(
        one("[string(createArray('a', 'b', 'c'))]"),
        json!("[\"a\",\"b\",\"c\"]")
    );
    assert_eq!(one("[substring('one two three', 4, 3)]"), json!("two"));
    assert!(try_one("[substring('hello', 1, 10)]").is_err());
    assert_eq!(one("[toLower('One Two Three')]"), json!("one two three"));
    assert_eq!(one("[toUpper('One Two Three')]"), json!("ONE TWO THREE"));
    assert_eq!(
        one("[trim('    one two three   ')]"),
        json!("one two three")
    );
    assert_eq!(
        one("[uri('http://contoso.com/resources/azuredeploy.json', 'nested/azuredeploy.json')]"),
        json!("http://contoso.com/resources/nested/azuredeploy.json")
    );
    assert_eq!(
        one("[uri('http://contoso.org/firstpath', 'myscript.sh')]"),
        json!("http://contoso.org/myscript.sh")
    );
    assert_eq!(
        one("[uri('http://contoso.org/firstpath/', 'myscript.sh')]"),
        json!("http://contoso.org/firstpath/myscript.sh")
    );
    assert_eq!(
        one("[uriComponent('http://contoso.com/resources/nested/azuredeploy.json')]"),
        json!("http%3A%2F%2Fcontoso.com%2Fresources%2Fnested%2Fazuredeploy.json")
    );
    assert_eq!(
        one("[uriComponentToString('http%3A%2F%2Fcontoso.com%2Fresources%2Fnested%2Fazuredeploy.json')]"),
        json!("http://contoso.com/resources/nested/azuredeploy.json")
    );
    assert_eq!(one("[concat('prefix', '-', 'abc')]"), json!("prefix-abc"));
    assert_eq!(one("[concat('a', true())]"), json!("aTrue"));
    assert_eq!(one("[uniqueString('test')]"), json!("rbgf3xv4ufgzg"));
    assert_eq!(
        one("[guid('test')]"),
        json!("d6a5baf1-8b9b-542a-8525-2982f1f98a0c")
    );
    assert_eq!(one("[contains('OneTwoThree', 'e')]"), json!(true));
    assert_eq!(one("[contains('OneTwoThree', 'z')]"), json!(false));
}

/// `format` with .NET format specifiers (the reference's example prints
/// "Hello, User. Formatted number: 8,175,133").
#[test]
fn format_specifiers() {
    assert_eq!(
        one("[format('{0}, {1}. Formatted number: {2:N0}', 'Hello', 'User', 8175133)]"),
        json!("Hello, User. Formatted number: 8,175,133")
    );
    assert_eq!(one("[format('{0:D5}', 42)]"), json!("00042"));
    assert_eq!(one("[format('{0:X}', 255)]"), json!("FF"));
    assert_eq!(one("[format('{0:x4}', 255)]"), json!("00ff"));
    assert_eq!(one("[format('{0:N2}', 1234)]"), json!("1,234.00"));
    assert_eq!(one("[format('{0:F1}', json('2.25'))]"), json!("2.2"));
    assert_eq!(one("[format('{0:P0}', json('0.25'))]"), json!("25 %"));
    assert_eq!(one("[format('{0:000}', 7)]"), json!("007"));
    assert_eq!(
        one("[format('{0:#,##0.0}', 1234567)]"),
        json!("1,234,567.0")
    );
    assert_eq!(
        one("[format('[{0,5}|{1,-3}]', 'ab', 'c')]"),
        json!("[   ab|c  ]")
    );
    assert_eq!(one("[format('{{x}} {0}', 'y')]"), json!("{x} y"));
    assert_eq!(one("[format('{0}-{1}', 'a', 2)]"), json!("a-2"));
    assert!(try_one("[format('{2}', 'a')]").is_err());
}

/// template-functions-array.md and -object.md examples.
#[test]
fn array_and_object_functions() {
    assert_eq!(one("[array('efgh')]"), json!(["efgh"]));
    assert_eq!(
        one("[concat(createArray('1-1', '1-2'), createArray('2-1'))]"),
        json!(["1-1", "1-2", "2-1"])
    );
    assert_eq!(
        one("[contains(createArray('one', 'two'), 'two')]"),
        json!(true)
    );
    assert_eq!(
        one("[contains(createObject('one', 'a'), 'ONE')]"),
        json!(true)
    );
    assert_eq!(one("[empty(createArray())]"), json!(true));
    assert_eq!(one("[empty('')]"), json!(true));
    assert_eq!(one("[first(createArray('one', 'two'))]"), json!("one"));
    assert_eq!(one("[first('One Two')]"), json!("O"));
    assert_eq!(one("[last(createArray('one', 'two'))]"), json!("two"));
    assert_eq!(
        one("[flatten(createArray(createArray('one', 'two'), createArray('three'), createArray('four', 'five')))]"),
        json!(["one", "two", "three", "four", "five"])
    );
    assert_eq!(one("[indexOf(createArray('a', 'b', 'c'), 'b')]"), json!(1));
    assert_eq!(one("[indexOf(createArray(1, 2, 3), 4)]"), json!(-1));
    assert_eq!(
        one("[intersection(createArray('one', 'two', 'three'), createArray('two', 'three'))]"),
        json!(["two", "three"])
    );
    assert_eq!(
        one("[intersection(createObject('one', 'a', 'two', 'b', 'three', 'c'), createObject('one', 'a', 'two', 'z', 'three', 'c'))]"),
        json!({"one": "a", "three": "c"})
    );
    assert_eq!(
        one("[union(createArray('one', 'two', 'three'), createArray('three', 'four'))]"),
        json!(["one", "two", "three", "four"])
    );
    assert_eq!(
        one("[union(json('{\"one\":{\"a\":1}}'), json('{\"one\":{\"b\":2},\"two\":3}'))]"),
        json!({"one": {"a": 1, "b": 2}, "two": 3})
    );
    assert_eq!(
        one("[items(createObject('item002', createObject('enabled', false()), 'item001', createObject('enabled', true())))]"),
        json!([
            {"key": "item001", "value": {"enabled": true}},
            {"key": "item002", "value": {"enabled": false}}
        ])
    );
    assert_eq!(
        one("[join(createArray('a', 'b', 'c'), ',')]"),
        json!("a,b,c")
    );
    assert_eq!(one("[json('{\"a\": \"b\"}').a]"), json!("b"));
    assert_eq!(one("[json('null')]"), Value::Null);
    assert_eq!(
        one("[length(createArray('one', 'two', 'three'))]"),
        json!(3)
    );
    assert_eq!(one("[length('One Two Three')]"), json!(13));
    assert_eq!(one("[max(createArray(0, 3, 2, 5, 4))]"), json!(5));
    assert_eq!(one("[min(0, 3, 2, 5, 4)]"), json!(0));
    assert_eq!(one("[range(5, 3)]"), json!([5, 6, 7]));
    assert_eq!(
        one("[skip(createArray('one', 'two', 'three'), 2)]"),
        json!(["three"])
    );
    assert_eq!(one("[skip('one two three', 4)]"), json!("two three"));
    assert_eq!(
        one("[take(createArray('one', 'two', 'three'), 2)]"),
        json!(["one", "two"])
    );
    assert_eq!(one("[take('one two three', 2)]"), json!("on"));
    assert_eq!(
        one("[tryGet(createObject('a', createObject('b', 1)), 'a', 'b')]"),
        json!(1)
    );
    assert_eq!(
        one("[tryGet(createObject('a', 1), 'missing')]"),
        Value::Null
    );
    assert_eq!(
        one("[objectKeys(createObject('a', 1, 'b', 2))]"),
        json!(["a", "b"])
    );
    assert_eq!(one("[null()]"), Value::Null);
}

/// template-functions-lambda.md examples.
#[test]
fn lambda_functions() {
    let dogs = "createArray(createObject('name', 'Evie', 'age', 5), createObject('name', 'Casper', 'age', 3), createObject('name', 'Indy', 'age', 2), createObject('name', 'Kira', 'age', 8))";
    assert_eq!(
        one(&format!("[map(filter({dogs}, lambda('dog', greaterOrEquals(lambdaVariables('dog').age, 5))), lambda('d', lambdaVariables('d').name))]")),
        json!(["Evie", "Kira"])
    );
    assert_eq!(
        one(&format!("[reduce(map({dogs}, lambda('d', lambdaVariables('d').age)), 0, lambda('cur', 'next', add(lambdaVariables('cur'), lambdaVariables('next'))))]")),
        json!(18)
    );
    assert_eq!(
        one(&format!("[map(sort({dogs}, lambda('a', 'b', less(lambdaVariables('a').age, lambdaVariables('b').age))), lambda('d', lambdaVariables('d').name))]")),
        json!(["Indy", "Casper", "Evie", "Kira"])
    );
    assert_eq!(
        one(&format!("[toObject({dogs}, lambda('e', lambdaVariables('e').name), lambda('e', lambdaVariables('e').age)).Kira]")),
        json!(8)
    );
    assert_eq!(
        one("[map(range(0, 3), lambda('i', 'k', format('{0}:{1}', lambdaVariables('i'), lambdaVariables('k'))))]"),
        json!(["0:0", "1:1", "2:2"])
    );
    assert!(try_one("[filter(createArray(1), 'notalambda')]").is_err());
}

#[test]
fn logic_numbers_and_comparison() {
    assert_eq!(one("[and(true(), not(false()))]"), json!(true));
    assert_eq!(
        one("[or(false(), true(), nosuch())]"),
        json!(true),
        "or stops at the first true"
    );
    assert_eq!(one("[coalesce(null(), null(), 'x')]"), json!("x"));
    assert_eq!(
        one("[if(equals(parameters('n'), 3), 'yes', nosuchfunction())]"),
        json!("yes"),
        "if is lazy"
    );
    assert_eq!(one("[add(mul(2, 3), sub(10, div(9, 3)))]"), json!(13));
    assert_eq!(one("[mod(7, 3)]"), json!(1));
    assert_eq!(one("[int('4')]"), json!(4));
    assert_eq!(one("[float('2.5')]"), json!(2.5));
    assert_eq!(one("[bool('true')]"), json!(true));
    assert_eq!(one("[bool(0)]"), json!(false));
    assert_eq!(one("[equals('ABC', 'abc')]"), json!(true));
    assert_eq!(
        one("[equals(createArray(1, 'A'), createArray(1, 'a'))]"),
        json!(true)
    );
    assert_eq!(one("[less(1, 10)]"), json!(true));
    assert_eq!(one("[lessOrEquals('a', 'a')]"), json!(true));
    assert_eq!(one("[greater('b', 'a')]"), json!(true));
    assert_eq!(one("[greaterOrEquals(5, 6)]"), json!(false));
    assert!(try_one("[div(1, 0)]").is_err());
}

#[test]
fn variables_copies_members_and_user_functions() {
    assert_eq!(one("[variables('o').inner.x[1]]"), json!(20));
    assert_eq!(one("[variables('o')['Inner']['x'][0]]"), json!(10));
    assert_eq!(one("[variables('a')]"), json!(["westeurope"]));
    assert_eq!(
        one("[variables('disks')]"),
        json!([{"name": "d1"}, {"name": "d2"}, {"name": "d3"}])
    );
    assert_eq!(one("[contoso.uniqueName('WEB')]"), json!("web-fn"));
    assert!(try_one("[contoso.nothing()]").is_err());
    let v = ev()
        .eval(
            &json!({"x": "[parameters( 'loc' )]", "y": "[variables('a')]", "z": "[[lit]"}),
            &Frame::new("r", None),
            "",
        )
        .unwrap();
    assert_eq!(
        v,
        json!({"x": "westeurope", "y": ["westeurope"], "z": "[lit]"})
    );
}

#[test]
fn property_copy_loops_and_copy_index() {
    let v = ev()
        .eval(
            &json!({"copy": [{"name": "subnets", "count": 2, "input": {"name": "[concat('s', copyIndex('subnets'))]", "prefix": "[format('10.0.{0}.0/24', copyIndex('subnets', 1))]"}}]}),
            &Frame::new("r", None),
            "properties",
        )
        .unwrap();
    assert_eq!(
        v,
        json!({"subnets": [{"name": "s0", "prefix": "10.0.1.0/24"}, {"name": "s1", "prefix": "10.0.2.0/24"}]})
    );
    let e = try_one("[copyIndex()]").unwrap_err();
    assert!(
        e.message.contains("only valid inside a copy loop"),
        "{}",
        e.message
    );
}

#[test]
fn new_guid_and_utc_now_only_in_parameter_defaults() {
    let e = try_one("[newGuid()]").unwrap_err();
    assert!(
        e.message.contains("default value of a parameter"),
        "{}",
        e.message
    );
    let mut f = Frame::new("parameter 'p'", None);
    f.in_default = true;
    let g = ev().eval(&json!("[newGuid()]"), &f, "").unwrap();
    assert_eq!(g.as_str().unwrap().len(), 36);
    assert_eq!(
        ev().eval(&json!("[utcNow()]"), &f, "").unwrap(),
        json!("20251203T080000Z")
    );
    assert_eq!(
        ev().eval(&json!("[utcNow('u')]"), &f, "").unwrap(),
        json!("2025-12-03 08:00:00Z")
    );
    assert_eq!(
        ev().eval(&json!("[utcNow('yyyy-MM-dd')]"), &f, "").unwrap(),
        json!("2025-12-03")
    );
}

#[test]
fn errors_name_the_place() {
    let e = ev()
        .eval(
            &json!({"p": {"id": "[resourceId('x')]"}}),
            &Frame::new("resource T 'n'", None),
            "properties",
        )
        .unwrap_err();
    assert_eq!(e.code, "InvalidTemplate");
    assert!(e.message.contains("properties.p.id"), "{}", e.message);
    assert_eq!(e.target.as_deref(), Some("properties.p.id"));
    let e = try_one("[nosuch('x')]").unwrap_err();
    assert!(e.message.contains("'nosuch' is not valid"), "{}", e.message);
    let e = try_one("[reference('x')]").unwrap_err();
    assert!(
        e.message.contains("reference() can't be used"),
        "{}",
        e.message
    );
    assert!(
        try_one("[concat('a'").is_ok(),
        "not wholly [...]: a literal"
    );
    let e = try_one("[concat('a']").unwrap_err();
    assert!(e.message.contains("is not valid"), "{}", e.message);
    let e = try_one("[variables('o').nothing]").unwrap_err();
    assert!(
        e.message.contains("available properties are 'Inner'"),
        "{}",
        e.message
    );
}

#[test]
fn cycles_are_refused() {
    let e = Evaluator {
        params: BTreeMap::new(),
        variables: [("a".to_string(), json!("[variables('a')]"))].into(),
        functions: BTreeMap::new(),
        scope: scope(),
        budget: Default::default(),
    };
    assert!(e
        .eval(&json!("[variables('a')]"), &Frame::new("r", None), "x")
        .unwrap_err()
        .message
        .contains("circular"));
}

/// What the fuzzers found (docs/fuzzing.md): each a panic, a huge
/// allocation or a hang before its fix, Azure's InvalidTemplate after.
#[test]
fn integer_overflow_is_a_refusal_not_a_panic() {
    for (s, why) in [
        ("[substring('abc', 9223372036854775807, 1)]", "startIndex"),
        ("[format('{18446744073709551615}', 1)]", "no argument"),
        ("[range(9223372036854775807, 10)]", "2147483647"),
        ("[range(2147483647, 1)]", "2147483647"),
        ("[div(-9223372036854775808, -1)]", "overflows"),
        ("[mod(-9223372036854775808, -1)]", "overflows"),
        ("[copyIndex(9223372036854775807)]", "overflows"),
    ] {
        let f = Frame::new("r", None).with_copy("l", 1);
        let e = ev().eval(&json!(s), &f, "p").unwrap_err();
        assert_eq!(e.code, "InvalidTemplate", "{s}");
        assert!(e.message.contains(why), "{s}: {}", e.message);
    }
    assert_eq!(one("[range(2147483646, 1)]"), json!([2147483646]));
    assert_eq!(
        one("[div(-9223372036854775807, -1)]"),
        json!(9223372036854775807i64)
    );
    assert_eq!(
        one("[pickZones('Microsoft.Compute', 'virtualMachines', 'westeurope', 3, 9223372036854775807)]"),
        json!(["2", "3", "1"])
    );
}

#[test]
fn widths_and_precisions_over_the_limit_are_refused_before_allocating() {
    for s in [
        "[padLeft('a', 2000000000)]",
        "[format('{0,2000000000}', 'a')]",
        "[format('gw-{0,433333333333333:D5}', 1)]",
        "[format('{0:D2000000000}', 1)]",
        "[format('{0:F70000}', 1)]",
        "[replace(padLeft('a', 4000000, 'a'), '', 'xyz')]",
        "[join(range(0, 10000), padLeft('', 1000, ','))]",
    ] {
        let e = try_one(s).unwrap_err();
        assert_eq!(e.code, "InvalidTemplate", "{s}");
        assert!(
            e.message.contains("4 MB") || e.message.contains("limit of 9999"),
            "{s}: {}",
            e.message
        );
    }
    assert_eq!(one("[format('{0:D5}', 42)]"), json!("00042"));
    assert_eq!(one("[padLeft('7', 3, '0')]"), json!("007"));
}

#[test]
fn exponential_variables_run_out_of_budget() {
    // v0 doubles into v1, v1 into v2 ... (2^40 bytes); and v'0 is used
    // twice by v'1 ... (2^30 calls of constant size): both refused quickly.
    let mut doubling = ev();
    let mut calls = ev();
    doubling
        .variables
        .insert("v0".into(), json!("[padLeft('', 1000, 'x')]"));
    calls.variables.insert("v0".into(), json!("[true()]"));
    for i in 1..=30 {
        let j = i - 1;
        doubling.variables.insert(
            format!("v{i}"),
            json!(format!("[concat(variables('v{j}'), variables('v{j}'))]")),
        );
        calls.variables.insert(
            format!("v{i}"),
            json!(format!("[equals(variables('v{j}'), variables('v{j}'))]")),
        );
    }
    let started = std::time::Instant::now();
    for e in [doubling, calls] {
        let err = e
            .eval(&json!("[variables('v30')]"), &Frame::new("r", None), "p")
            .unwrap_err();
        assert!(err.message.contains("256 MB"), "{}", err.message);
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn deep_nesting_is_refused_within_a_workers_stack() {
    // Each variable nests 200 calls and uses the next: the depth counts
    // across variables. On a 2 MiB stack, as the daemon's (release)
    // workers have; a debug build's frames are several times larger.
    let stack = if cfg!(debug_assertions) {
        16 << 20
    } else {
        2 << 20
    };
    let err = std::thread::Builder::new()
        .stack_size(stack)
        .spawn(|| {
            let nest =
                |inner: String| format!("{}{inner}{}", "string(".repeat(100), ")".repeat(100));
            let mut e = ev();
            for i in 0..60 {
                e.variables.insert(
                    format!("d{i}"),
                    json!(format!("[{}]", nest(format!("variables('d{}')", i + 1)))),
                );
            }
            e.variables.insert("d60".into(), json!("end"));
            let too_deep = format!("[{}]", nest(nest("1".into())));
            let f = Frame::new("r", None);
            let a = e.eval(&json!("[variables('d0')]"), &f, "p").unwrap_err();
            let b = e.eval(&json!(too_deep), &f, "p").unwrap_err();
            let fine = format!("[{}1{}]", "string(".repeat(100), ")".repeat(100));
            assert_eq!(e.eval(&json!(fine), &f, "p").unwrap(), json!("1"));
            [a.message, b.message]
        })
        .unwrap()
        .join()
        .unwrap();
    assert!(err[0].contains("more than 128 levels"), "{}", err[0]);
    assert!(err[1].contains("more than 128 levels"), "{}", err[1]);
}
