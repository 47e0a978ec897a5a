//! One contract per port, run against every adapter of it: what the service relies on holds
//! the same on SQLite and DynamoDB, on files and S3 (the AWS adapters on the emulator the tests
//! start themselves). A contract is a function over the port; `contract!` runs it on each.

mod artifact_store;
mod catalog_store;
mod job_queue;
mod job_store;

/// For each contract `name` in `module`, one test per adapter: `<adapter>::<name>`, the
/// adapter built by `<adapter>()` in that module.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::local().await).await
                }
            )*
        }
        mod aws {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::aws().await).await
                }
            )*
        }
    };
}
pub(crate) use contract;
