//! The Portolan server (being written).
