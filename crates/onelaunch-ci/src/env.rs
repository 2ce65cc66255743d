//! Read-only access to environment variables.

use std::collections::{BTreeMap, HashMap};

/// A source of environment variables.
///
/// An empty value counts as absent: every implementation in this crate returns
/// `None` for a variable that is set to the empty string, the way CI detectors
/// treat `GITHUB_ACTIONS=""`.
pub trait Env {
    /// The value of `key`, or `None` when it is unset, empty or not valid UTF-8.
    fn var(&self, key: &str) -> Option<String>;
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

/// The environment of the current process (`std::env::var`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, key: &str) -> Option<String> {
        non_empty(std::env::var(key).ok())
    }
}

impl Env for HashMap<String, String> {
    fn var(&self, key: &str) -> Option<String> {
        non_empty(self.get(key).cloned())
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, key: &str) -> Option<String> {
        non_empty(self.get(key).cloned())
    }
}

/// Any `Fn(&str) -> Option<String>` closure is an environment.
impl<F> Env for F
where
    F: Fn(&str) -> Option<String>,
{
    fn var(&self, key: &str) -> Option<String> {
        non_empty(self(key))
    }
}

/// A named wrapper around a closure, for places where a concrete type is
/// handier than a bare closure (struct fields, trait objects). Closures also
/// implement [`Env`] directly.
pub struct FnEnv<F>(pub F);

impl<F> Env for FnEnv<F>
where
    F: Fn(&str) -> Option<String>,
{
    fn var(&self, key: &str) -> Option<String> {
        non_empty((self.0)(key))
    }
}

impl<F> std::fmt::Debug for FnEnv<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FnEnv(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_are_absent() {
        let map: HashMap<String, String> = [("A".to_string(), String::new())].into();
        assert_eq!(map.var("A"), None);
        assert_eq!(map.var("B"), None);

        let closure = |k: &str| (k == "A").then(String::new);
        assert_eq!(closure.var("A"), None);
        assert_eq!(
            FnEnv(|_: &str| Some("x".to_string())).var("A"),
            Some("x".into())
        );
    }

    #[test]
    fn closures_and_maps_work_as_trait_objects() {
        let map: BTreeMap<String, String> = [("A".to_string(), "1".to_string())].into();
        let closure = |k: &str| (k == "B").then(|| "2".to_string());
        let sources: [&dyn Env; 2] = [&map, &closure];
        assert_eq!(sources[0].var("A").as_deref(), Some("1"));
        assert_eq!(sources[1].var("B").as_deref(), Some("2"));
    }

    #[test]
    fn process_env_reads_std_env() {
        // PATH is set in any test environment that can run cargo.
        assert!(ProcessEnv.var("PATH").is_some());
        assert_eq!(ProcessEnv.var("ONELAUNCH_CI_SURELY_UNSET_VARIABLE"), None);
    }
}
