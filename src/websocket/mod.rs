//! The WebSocket family: WEBSOCKET_SERVER, WEBSOCKET_CLIENT and their TLS
//! twins (modes 16–19), options 120–129 (callbacks.md, "WebSocket").

pub mod deflate;
