//! (placeholder; its owner fills it in, see docs/engine.md)
