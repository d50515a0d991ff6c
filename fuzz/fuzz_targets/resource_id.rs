//! A resource id, as the API parses it from a path or a body.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: vnet_agent_fuzz::LimitedAlloc = vnet_agent_fuzz::LimitedAlloc;

fuzz_target!(|data: &[u8]| {
    let _ = vnet_agent::fuzzing::resource_id(data);
});
