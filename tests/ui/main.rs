//! The web UI in a real headless Chromium against the real server: submit from the form and
//! watch the job finish, read its stdout and result, filter the list, cancel a running job, and
//! page back through a large log. Screenshots of each step go to the test output.

mod browser;
mod web_ui;
