//! github wrapper on its real local runner (filled in by the wrapper tests).
