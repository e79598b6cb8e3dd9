//! Other programs' histories: detecting a format, reading its rows and feeding the mirror.
//! The only place that knows a foreign schema or encoding (one file per format); it never
//! writes a source, and knows nothing of the terminal or the command line.
//!
//! - [`msgpack`]: LangGraph's value encodings (its serializer's msgpack dialect), as JSON;
//! - [`temporal`]: a Temporal workflow history (JSON), as events for the `temporal` reducer.

pub mod msgpack;
pub mod temporal;
