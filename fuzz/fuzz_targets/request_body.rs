//! A PUT or PATCH body for one resource of the example lab (first byte: which).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: vnet_agent_fuzz::LimitedAlloc = vnet_agent_fuzz::LimitedAlloc;

fuzz_target!(|data: &[u8]| {
    let _ = vnet_agent_fuzz::on_daemon_stack(|| vnet_agent::fuzzing::request_body(data));
});
