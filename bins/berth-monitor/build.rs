//! The hot-path linker script (../hot-path.rs).
#![forbid(unsafe_code)]

include!("../hot-path.rs");

fn main() {
    hot_path();
}
