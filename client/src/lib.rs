//! The Portolan client library (being written).
