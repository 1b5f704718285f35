#[macro_use]
mod errors;
mod builtins;
mod fromnow;
mod interpreter;
mod op_props;
mod render;
mod template;
mod value;
mod whitespace;

pub use fromnow::use_test_now;
pub use render::render;
pub use template::Template;
