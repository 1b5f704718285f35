mod context;
mod evaluator;
mod fast_parser;
mod node;
mod parser;

pub(crate) use context::Context;
pub(crate) use evaluator::{evaluate, evaluate_ref};
pub(crate) use node::Node;
pub(crate) use parser::{parse_all, parse_partial};
