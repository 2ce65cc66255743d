//! End-to-end tests: the real server on 127.0.0.1:0 with a temporary SQLite
//! database, driven by the real `onelaunch` binary and the CI wrappers on
//! their real local runners.

mod allure3;
mod allurectl_compat;
mod api;
mod attachments;
mod behaviour;
mod ci_led;
mod closing;
mod compare;
mod container_image;
mod edges;
mod frameworks;
mod gate;
mod globals;
mod hardening;
mod lifecycle;
mod manual;
mod pg;
mod pki;
mod proxy;
mod release_server;
mod release_workflow;
mod reliability;
mod replicas;
mod reruns;
mod server_led;
mod server_led_plans;
mod server_tls;
mod shards;
mod shared_launch;
mod static_binary;
mod storage;
mod support;
mod terminal;
mod tls;
mod tokens;
mod truth;
mod web_ui;
mod wrapper_github;
mod wrapper_gitlab;
mod wrapper_jenkins;
mod wrapper_shards;
