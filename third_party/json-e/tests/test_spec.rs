#![allow(unused_variables)]
#![allow(non_snake_case)]

// (warnings have to be disabled in this file, not in the included file)

include!(concat!(env!("OUT_DIR"), "/test_spec.rs"));
