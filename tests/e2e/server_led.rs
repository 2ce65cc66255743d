//! Server-led launches (test cases, jobs, plans, runs).
