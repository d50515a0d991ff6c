//! One template language expression in a small fixed context.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: vnet_agent_fuzz::LimitedAlloc = vnet_agent_fuzz::LimitedAlloc;

fuzz_target!(|data: &[u8]| {
    let _ = vnet_agent_fuzz::on_daemon_stack(|| vnet_agent::fuzzing::expression(data));
});
