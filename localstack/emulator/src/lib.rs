//! The local AWS stack without Docker (DESIGN.md, "Local testing without Docker").
//!
//! # Layout
//! - [`stack`]: `create_stack`, the one code path that creates the platform's resources
//!   (table, bucket, queue with its dead-letter queue, the state machine from
//!   `statemachines/`), used by the emulator script, LocalStack's init hook and the tests.
//! - [`lambda_router`]: the router on moto's `MOTO_PORT`: Step Functions' Lambda invocations run
//!   our function handlers in-process; every other call is forwarded to moto.
//! - [`queue_poller`]: the SQS event source mapping: the jobs queue feeds the dispatcher.

pub mod lambda_router;
pub mod queue_poller;
pub mod stack;
