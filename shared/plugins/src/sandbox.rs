//! What keeps a shell job inside its box: another user, Landlock, a PID namespace.
//!
//! - [`harden_server_process`]: the server makes itself non-dumpable at start, so a job running
//!   as the same user cannot read `/proc/<server>/environ` or `/proc/<server>/mem`.
//! - **User.** When the server is root, every job runs as [`JobUser`] (default `nobody`, or
//!   `HEIMDALL_JOB_USER`), without supplementary groups. Otherwise jobs run as the server's user.
//! - **Landlock** (Linux 5.13+, no privileges needed): the job may read and execute system
//!   folders, read and write a few harmless devices, and do anything beneath its own work dir;
//!   everything else on the file system (the data dir, the job store, other jobs' work dirs,
//!   keys) is refused with `EACCES`. Where the kernel has no Landlock the job still runs and one
//!   warning says file access is not restricted.
//! - **PID namespace**: the job's processes live in a namespace of their own whose init is ours;
//!   when the job's main process ends, or its timeout or a cancel kills the process the server
//!   spawned, or the server itself dies, the kernel kills every process in that namespace,
//!   `setsid` and double forks included. Where namespaces are refused (`EPERM`: AWS Lambda,
//!   containers under a default seccomp profile) the spawned helper is the job's child
//!   subreaper instead: orphans are reparented to it, never to init, and it kills what is left
//!   below it when the job's main process ends; on a timeout or a cancel the server kills the
//!   helper's descendants before the helper. The output wait is bounded either way (see `shell`).
//!
//! Everything that needs allocation or locks (resolving the user, opening the Landlock rule
//! paths, building the ruleset, formatting the id maps) happens in the server before the fork;
//! [`ChildPlan::enter`], which runs between fork and exec, only makes raw system calls.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Once, OnceLock};

/// Makes this process non-dumpable (`prctl(PR_SET_DUMPABLE, 0)`). Call it first thing in every
/// server binary that runs shell jobs.
///
/// Why: when the server is not root, its jobs run as the server's own user, and a process may
/// normally read `/proc/<pid>/environ`, `/proc/<pid>/mem` and ptrace any process of its user.
/// The server's environment and memory hold credentials (AWS keys, signing keys, database
/// passwords). A non-dumpable process's `/proc/<pid>` files belong to root and the kernel's
/// ptrace check refuses same-user access without `CAP_SYS_PTRACE`. The flag is reset by
/// `execve`, so the jobs themselves are ordinary processes; the short-lived helper processes the
/// shell plugin forks inherit it and keep their (copied) server memory closed too. It also stops
/// core dumps of the server, which would hold the same secrets.
///
/// Where it is the only guard: a non-root server whose jobs get no user namespace and no
/// Landlock (e.g. AWS Lambda on an old kernel). A root server's jobs run as another user, and a
/// job in a child user namespace (the non-root default) is refused another namespace's
/// `/proc/<pid>/environ` by the kernel; the test
/// `harden_server_process_alone_keeps_the_environment_from_a_same_user_job` checks the bare case.
pub fn harden_server_process() {
    // SAFETY: prctl(PR_SET_DUMPABLE) takes plain integers and touches no memory of ours.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        tracing::warn!(error = %io::Error::last_os_error(), "could not make the server non-dumpable");
    }
}

/// Who jobs run as when the server is root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobUser {
    /// A user name, looked up in the password database when the plugin is built.
    Name(String),
    /// Numeric ids (`HEIMDALL_JOB_USER=uid:gid`).
    Ids { uid: u32, gid: u32 },
}

/// The environment variable naming the job user: a user name or `uid:gid`.
pub const JOB_USER_ENV: &str = "HEIMDALL_JOB_USER";
/// The job user when `HEIMDALL_JOB_USER` is not set.
pub const DEFAULT_JOB_USER: &str = "nobody";

impl JobUser {
    /// `name` or `uid:gid`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err(format!("{JOB_USER_ENV} is empty; give a user name or uid:gid"));
        }
        match text.split_once(':') {
            Some((uid, gid)) => match (uid.parse(), gid.parse()) {
                (Ok(uid), Ok(gid)) => Ok(Self::Ids { uid, gid }),
                _ => Err(format!("{JOB_USER_ENV}=`{text}`: expected a user name or numeric uid:gid")),
            },
            None => Ok(Self::Name(text.to_owned())),
        }
    }

    /// The uid and gid to switch to; never root.
    fn resolve(&self) -> Result<(libc::uid_t, libc::gid_t), String> {
        let (uid, gid) = match self {
            Self::Ids { uid, gid } => (*uid, *gid),
            Self::Name(name) => lookup_user(name)?,
        };
        if uid == 0 || gid == 0 {
            return Err(format!("the job user {self} is root (uid {uid}, gid {gid}); jobs never run as root"));
        }
        Ok((uid, gid))
    }
}

impl std::fmt::Display for JobUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Name(name) => write!(f, "`{name}`"),
            Self::Ids { uid, gid } => write!(f, "{uid}:{gid}"),
        }
    }
}

fn lookup_user(name: &str) -> Result<(libc::uid_t, libc::gid_t), String> {
    let c_name = CString::new(name).map_err(|_| format!("the job user `{name}` contains a NUL byte"))?;
    let mut size = 16 * 1024;
    loop {
        let mut buffer = vec![0 as libc::c_char; size];
        // SAFETY: a zeroed passwd is a valid out-parameter; getpwnam_r writes only into it and
        // into `buffer` (whose length we pass), and sets `found` to it or to null.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let code = unsafe {
            libc::getpwnam_r(c_name.as_ptr(), &mut entry, buffer.as_mut_ptr(), buffer.len(), &mut found)
        };
        match code {
            0 if found.is_null() => {
                return Err(format!(
                    "the job user `{name}` does not exist; set {JOB_USER_ENV} to an existing user or uid:gid"
                ));
            }
            0 => return Ok((entry.pw_uid, entry.pw_gid)),
            libc::ERANGE if size < 1 << 20 => size *= 4,
            code => return Err(format!("could not look up the job user `{name}`: {}", io::Error::from_raw_os_error(code))),
        }
    }
}

/// How the shell plugin confines its jobs. [`Default`] is everything on, jobs as `nobody`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShellSandbox {
    /// Who jobs run as when the server's euid is 0 (ignored otherwise).
    pub job_user: JobUser,
    /// Restrict file access with Landlock where the kernel has it.
    pub landlock: bool,
    /// Run each job in a PID namespace of its own where the kernel allows it.
    pub pid_namespace: bool,
}

impl Default for ShellSandbox {
    fn default() -> Self {
        Self { job_user: JobUser::Name(DEFAULT_JOB_USER.into()), landlock: true, pid_namespace: true }
    }
}

impl ShellSandbox {
    /// The default, with the job user from `HEIMDALL_JOB_USER` when set.
    pub fn from_env() -> Result<Self, String> {
        let mut sandbox = Self::default();
        if let Ok(text) = std::env::var(JOB_USER_ENV) {
            sandbox.job_user = JobUser::parse(&text)?;
        }
        Ok(sandbox)
    }
}

// ---- Landlock (include/uapi/linux/landlock.h) ----

const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1 << 0;
const LANDLOCK_RULE_PATH_BENEATH: libc::c_int = 1;
const FS_EXECUTE: u64 = 1 << 0;
const FS_WRITE_FILE: u64 = 1 << 1;
const FS_READ_FILE: u64 = 1 << 2;
const FS_READ_DIR: u64 = 1 << 3;
/// ABI 1: execute, write, read, read dir, remove dir/file, make char/dir/reg/sock/fifo/block/sym.
const FS_ABI1: u64 = (1 << 13) - 1;
const FS_REFER: u64 = 1 << 13; // ABI 2
const FS_TRUNCATE: u64 = 1 << 14; // ABI 3
const FS_IOCTL_DEV: u64 = 1 << 15; // ABI 5
/// The rights that make sense on a file (the others only on a directory).
const FS_FILE_RIGHTS: u64 = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV;
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0; // ABI 6
const SCOPE_SIGNAL: u64 = 1 << 1; // ABI 6

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// System folders a job may read and execute (those that exist). `/etc` is needed for the
/// loader cache, users, TLS roots, resolv.conf and time zones; `/proc` and `/sys` for tools that
/// look at themselves or the machine (other processes' secrets there are guarded by their
/// owners and by Landlock's own ptrace rule: a sandboxed process cannot inspect one outside its
/// sandbox).
const SYSTEM_READ: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/proc", "/sys",
    "/run/systemd/resolve",
];
/// Devices a job may read and write. Not `/dev/tty` (the server's terminal, if it has one), not
/// `/dev/shm` (shared with every other process of the user).
const DEVICES: &[&str] = &["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"];

fn landlock_abi() -> Result<i32, String> {
    // SAFETY: with a null attribute, size 0 and the VERSION flag the call only returns a number.
    let abi = unsafe {
        libc::syscall(libc::SYS_landlock_create_ruleset, std::ptr::null::<RulesetAttr>(), 0usize, LANDLOCK_CREATE_RULESET_VERSION)
    };
    if abi >= 1 {
        return Ok(abi as i32);
    }
    let error = io::Error::last_os_error();
    Err(match error.raw_os_error() {
        Some(libc::ENOSYS) => "the kernel has no Landlock (before Linux 5.13 or not built in)".into(),
        Some(libc::EOPNOTSUPP) => "Landlock is disabled on this kernel (see the `lsm=` boot parameter)".into(),
        _ => format!("Landlock is unavailable: {error}"),
    })
}

fn handled_fs(abi: i32) -> u64 {
    let mut handled = FS_ABI1;
    if abi >= 2 {
        handled |= FS_REFER;
    }
    if abi >= 3 {
        handled |= FS_TRUNCATE;
    }
    if abi >= 5 {
        handled |= FS_IOCTL_DEV;
    }
    handled
}

fn syscall_fd(result: libc::c_long) -> io::Result<OwnedFd> {
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(result as RawFd) })
}

struct Ruleset {
    fd: OwnedFd,
    handled: u64,
}

impl Ruleset {
    fn new(abi: i32) -> io::Result<Self> {
        let handled = handled_fs(abi);
        let attr = RulesetAttr {
            handled_access_fs: handled,
            handled_access_net: 0,
            // Signals and abstract unix sockets stay inside the job: it cannot kill or talk to
            // other jobs (which run as the same user) or the server.
            scoped: if abi >= 6 { SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL } else { 0 },
        };
        let size = match abi {
            ..=3 => 8,
            4..=5 => 16,
            _ => size_of::<RulesetAttr>(),
        };
        // SAFETY: `attr` is a live landlock_ruleset_attr of at least `size` bytes.
        let fd = syscall_fd(unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, &attr, size, 0u32) })?;
        Ok(Self { fd, handled })
    }

    /// Allows `access` beneath `path`. `Ok(false)` when the path does not exist.
    fn allow(&self, path: &Path, access: u64) -> io::Result<bool> {
        let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: a NUL-terminated path; O_PATH opens nothing but a reference to it.
        let opened = unsafe { libc::open(c_path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        if opened < 0 {
            let error = io::Error::last_os_error();
            return if error.kind() == io::ErrorKind::NotFound { Ok(false) } else { Err(error) };
        }
        // SAFETY: we own the descriptor open just returned.
        let path_fd = unsafe { OwnedFd::from_raw_fd(opened) };
        // SAFETY: a zeroed stat is a valid out-parameter for fstat on a live descriptor.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(path_fd.as_raw_fd(), &mut stat) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut allowed = access & self.handled;
        if stat.st_mode & libc::S_IFMT != libc::S_IFDIR {
            allowed &= FS_FILE_RIGHTS;
        }
        let rule = PathBeneathAttr { allowed_access: allowed, parent_fd: path_fd.as_raw_fd() };
        // SAFETY: `rule` is a live landlock_path_beneath_attr; both descriptors are open.
        let added = unsafe {
            libc::syscall(libc::SYS_landlock_add_rule, self.fd.as_raw_fd(), LANDLOCK_RULE_PATH_BENEATH, &rule, 0u32)
        };
        if added != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(true)
    }
}

// ---- PID namespace ----

/// The text of one `/proc/self/{u,g}id_map` line, formatted before the fork.
#[derive(Clone, Copy)]
pub(crate) struct MapLine {
    bytes: [u8; 40],
    len: usize,
}

impl MapLine {
    fn identity(id: u32) -> Self {
        let text = format!("{id} {id} 1\n");
        let mut bytes = [0u8; 40];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Self { bytes, len: text.len() }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

#[derive(Clone, Copy)]
pub(crate) enum NamespacePlan {
    /// The server is root: `unshare(CLONE_NEWPID)`.
    Pid,
    /// Not root: a user namespace mapping our ids to themselves gives us the right to make the
    /// PID namespace; the job keeps our uid and gains no capability (exec drops them).
    UserAndPid { uid_map: MapLine, gid_map: MapLine },
}

impl NamespacePlan {
    fn for_this_process() -> Self {
        // SAFETY: plain getters.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        if uid == 0 { Self::Pid } else { Self::UserAndPid { uid_map: MapLine::identity(uid), gid_map: MapLine::identity(gid) } }
    }

    /// In a forked child: enters the new namespaces (the next child forked is their PID 1).
    ///
    /// # Safety
    /// Only in a single-threaded child between fork and exec: async-signal-safe calls only.
    unsafe fn unshare(&self) -> io::Result<()> {
        unsafe {
            match self {
                Self::Pid => check(libc::unshare(libc::CLONE_NEWPID)),
                Self::UserAndPid { uid_map, gid_map } => {
                    // /proc/self/*_map of a non-dumpable process belongs to root: make this
                    // (short-lived, never exec'd) process dumpable while it writes them.
                    let dumpable = libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0);
                    check(libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0))?;
                    check(libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWPID))?;
                    write_proc(c"/proc/self/setgroups", b"deny")?;
                    write_proc(c"/proc/self/uid_map", uid_map.as_bytes())?;
                    write_proc(c"/proc/self/gid_map", gid_map.as_bytes())?;
                    check(libc::prctl(libc::PR_SET_DUMPABLE, dumpable.max(0), 0, 0, 0))
                }
            }
        }
    }
}

/// Whether this process may make PID namespaces: forks a child that does exactly what a job's
/// helper does (unshare, write the maps, fork a PID 1) and reports. Cached per process.
fn probe_pid_namespace() -> Result<(), String> {
    static PROBED: OnceLock<Result<(), String>> = OnceLock::new();
    PROBED
        .get_or_init(|| {
            let plan = NamespacePlan::for_this_process();
            // SAFETY: the child makes only async-signal-safe calls and always _exits.
            let pid = unsafe { libc::fork() };
            if pid < 0 {
                return Err(format!("could not fork to probe namespaces: {}", io::Error::last_os_error()));
            }
            if pid == 0 {
                unsafe {
                    if let Err(error) = plan.unshare() {
                        libc::_exit(error.raw_os_error().unwrap_or(libc::EINVAL).clamp(1, 254));
                    }
                    let init = libc::fork();
                    if init == 0 {
                        libc::_exit(0);
                    }
                    if init < 0 {
                        libc::_exit(libc::EAGAIN);
                    }
                    libc::_exit(wait_for(init));
                }
            }
            let code = wait_for(pid);
            match code {
                0 => Ok(()),
                code if code < 128 => Err(format!("namespaces are refused here: {}", io::Error::from_raw_os_error(code))),
                code => Err(format!("the namespace probe ended with status {code}")),
            }
        })
        .clone()
}

/// Waits for `pid` (retrying on EINTR) and returns its exit code, or 128 + the signal that
/// killed it. Async-signal-safe.
fn wait_for(pid: libc::pid_t) -> i32 {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into our local.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        if waited == pid {
            return status_code(status);
        }
        if waited < 0 && errno() != libc::EINTR {
            return 255;
        }
    }
}

/// Set by H's SIGTERM handler: the server is gone, stop the job.
static REAPER_STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn note_stop(_signal: libc::c_int) {
    REAPER_STOP.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Kills every process below this one, a subreaper: its children, then the children theirs
/// leave behind (reparented here), until none is left. Reads `/proc` with raw system calls and
/// stack buffers only: async-signal-safe, for H between fork and exit.
unsafe fn kill_own_descendants() {
    unsafe {
        let me = libc::getpid();
        for _ in 0..1000 {
            let killed = kill_children_of(me);
            let mut status = 0;
            while libc::waitpid(-1, &mut status, libc::WNOHANG) > 0 {}
            if !killed && libc::waitpid(-1, &mut status, libc::WNOHANG) < 0 && errno() == libc::ECHILD {
                return;
            }
            let pause = libc::timespec { tv_sec: 0, tv_nsec: 2_000_000 };
            libc::nanosleep(&pause, std::ptr::null_mut());
        }
    }
}

/// SIGKILLs every process whose parent is `parent`; whether there was one. Async-signal-safe.
unsafe fn kill_children_of(parent: libc::pid_t) -> bool {
    unsafe {
        let proc_dir = libc::open(c"/proc".as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC);
        if proc_dir < 0 {
            return false;
        }
        let mut killed = false;
        let mut entries = [0u8; 4096];
        loop {
            let read = libc::syscall(libc::SYS_getdents64, proc_dir, entries.as_mut_ptr(), entries.len());
            if read <= 0 {
                break;
            }
            let mut at = 0usize;
            while at + 19 < read as usize {
                let length = u16::from_ne_bytes([entries[at + 16], entries[at + 17]]) as usize;
                if length == 0 {
                    break;
                }
                if let Some(pid) = parse_pid(&entries[at + 19..at + length])
                    && parent_of(pid) == Some(parent)
                {
                    libc::kill(pid, libc::SIGKILL);
                    killed = true;
                }
                at += length;
            }
        }
        libc::close(proc_dir);
        killed
    }
}

/// A /proc entry name (NUL-terminated) as a pid, if it is one.
fn parse_pid(name: &[u8]) -> Option<libc::pid_t> {
    let mut pid: libc::pid_t = 0;
    let mut digits = 0;
    for &byte in name.iter().take_while(|b| **b != 0) {
        if !byte.is_ascii_digit() {
            return None;
        }
        pid = pid.checked_mul(10)?.checked_add(libc::pid_t::from(byte - b'0'))?;
        digits += 1;
    }
    (digits > 0).then_some(pid)
}

/// The parent of `pid`, from `/proc/<pid>/stat` (the field after the `(comm)` and the state).
/// Async-signal-safe.
fn parent_of(pid: libc::pid_t) -> Option<libc::pid_t> {
    let mut path = [0u8; 32];
    let mut length = 0;
    for byte in b"/proc/" {
        path[length] = *byte;
        length += 1;
    }
    let mut digits = [0u8; 12];
    let mut count = 0;
    let mut rest = pid;
    loop {
        digits[count] = b'0' + (rest % 10) as u8;
        count += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for index in (0..count).rev() {
        path[length] = digits[index];
        length += 1;
    }
    for byte in b"/stat" {
        path[length] = *byte;
        length += 1;
    }
    let mut stat = [0u8; 512];
    // SAFETY: `path` is NUL-terminated (zeroed past `length`); the read fills our buffer.
    let read = unsafe {
        let fd = libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return None;
        }
        let read = libc::read(fd, stat.as_mut_ptr().cast(), stat.len());
        libc::close(fd);
        read
    };
    let stat = &stat[..usize::try_from(read).ok()?];
    let after_comm = stat.iter().rposition(|b| *b == b')')? + 1;
    // ") S 1234 ..."
    let fields = &stat[after_comm..];
    let ppid_start = fields.iter().position(|b| b.is_ascii_digit())?;
    let mut ppid: libc::pid_t = 0;
    for &byte in fields[ppid_start..].iter().take_while(|b| b.is_ascii_digit()) {
        ppid = ppid.checked_mul(10)?.checked_add(libc::pid_t::from(byte - b'0'))?;
    }
    Some(ppid)
}

/// Kills every descendant of `root` (not `root` itself), from normal server code: what a
/// timeout or a cancel does before killing the job's helper H, which anchors them all when
/// there is no PID namespace (it is their subreaper). Repeats until a scan finds none, so
/// processes forked meanwhile are caught too.
pub(crate) fn kill_descendants_of(root: libc::pid_t) {
    for _ in 0..50 {
        let mut parents = Vec::new();
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(pid) = name.to_str().and_then(|n| n.parse::<libc::pid_t>().ok()) else { continue };
                if let Some(parent) = parent_of(pid) {
                    parents.push((pid, parent));
                }
            }
        }
        let mut tree = vec![root];
        let mut index = 0;
        while index < tree.len() {
            let parent = tree[index];
            tree.extend(parents.iter().filter(|(_, p)| *p == parent).map(|(pid, _)| *pid));
            index += 1;
        }
        if tree.len() == 1 {
            return;
        }
        for pid in &tree[1..] {
            // SAFETY: kill(2) of a process found below the job's helper; reads no memory.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

fn status_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        255
    }
}

fn errno() -> i32 {
    // SAFETY: errno is thread-local and always readable.
    unsafe { *libc::__errno_location() }
}

fn check(result: libc::c_int) -> io::Result<()> {
    if result < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Writes `bytes` to a /proc file with raw open/write. Async-signal-safe.
unsafe fn write_proc(path: &CStr, bytes: &[u8]) -> io::Result<()> {
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let written = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        let error = io::Error::last_os_error();
        libc::close(fd);
        if written == bytes.len() as isize { Ok(()) } else { Err(error) }
    }
}

const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;

/// Closes every descriptor from `first` to `last` (inclusive). Async-signal-safe.
unsafe fn close_fds(first: libc::c_uint, last: libc::c_uint) {
    if first > last {
        return;
    }
    unsafe {
        if libc::syscall(libc::SYS_close_range, first, last, 0 as libc::c_uint) != 0 {
            for fd in first..=last.min(4095) {
                libc::close(fd as libc::c_int);
            }
        }
    }
}

/// Asks for SIGKILL when the parent dies, and dies now if it already has (PR_SET_PDEATHSIG
/// only covers deaths after the call).
unsafe fn die_with_parent(parent: libc::pid_t) -> io::Result<()> {
    unsafe {
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0))?;
        if libc::getppid() != parent {
            libc::_exit(128 + libc::SIGKILL);
        }
    }
    Ok(())
}

/// Puts every catchable signal back to its default action: the helpers must not run the
/// server's handlers (tokio's SIGCHLD handler writes to a descriptor they have closed).
unsafe fn default_signal_actions() {
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = libc::SIG_DFL;
        for signal in 1..32 {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                libc::sigaction(signal, &action, std::ptr::null_mut());
            }
        }
    }
}

// ---- The plan, made in the server, carried out in the child ----

/// What the shell plugin resolved when it was built: the job user, the Landlock ABI, whether
/// PID namespaces work. Shared by every job.
pub(crate) struct Confinement {
    identity: Option<(libc::uid_t, libc::gid_t)>,
    job_user: String,
    landlock: Result<i32, String>,
    namespace: Result<NamespacePlan, String>,
}

impl Confinement {
    pub(crate) fn new(sandbox: &ShellSandbox) -> Result<Self, String> {
        // SAFETY: plain getter.
        let root = unsafe { libc::geteuid() } == 0;
        let identity = if root { Some(sandbox.job_user.resolve()?) } else { None };
        let job_user = match (identity, &sandbox.job_user) {
            (Some((uid, gid)), user) => format!("{user} ({uid}:{gid}), no supplementary groups; the server is root"),
            // SAFETY: plain getters.
            (None, _) => format!("the server's own user ({}:{})", unsafe { libc::geteuid() }, unsafe { libc::getegid() }),
        };
        let landlock = if sandbox.landlock { landlock_abi() } else { Err("Landlock is turned off (ShellSandbox::landlock)".into()) };
        let namespace = if sandbox.pid_namespace {
            probe_pid_namespace().map(|()| NamespacePlan::for_this_process())
        } else {
            Err("PID namespaces are turned off (ShellSandbox::pid_namespace)".into())
        };
        let confinement = Self { identity, job_user, landlock, namespace };
        static WARNED_LANDLOCK: Once = Once::new();
        if let Err(reason) = &confinement.landlock {
            WARNED_LANDLOCK.call_once(|| tracing::warn!(%reason, "shell jobs: file access is NOT restricted (no Landlock)"));
        }
        static WARNED_NAMESPACE: Once = Once::new();
        if let Err(reason) = &confinement.namespace {
            WARNED_NAMESPACE.call_once(|| {
                tracing::warn!(%reason, "shell jobs: no PID namespace; each job's processes are tracked by a subreaper and killed with the job instead")
            });
        }
        Ok(confinement)
    }

    pub(crate) fn report(&self) -> String {
        let landlock = match &self.landlock {
            Ok(abi) => format!(
                "Landlock ABI {abi}: read/execute system folders, read/write /dev/null-like devices, everything beneath the job's work dir (plus each command's `sandbox` paths); nothing else{}",
                if *abi >= 6 { "; signals and abstract unix sockets scoped to the job" } else { "" }
            ),
            Err(reason) => format!("NOT restricted: {reason}"),
        };
        let namespace = match &self.namespace {
            Ok(NamespacePlan::Pid) => "a PID namespace per job: the whole tree dies with the job, on timeout, on cancel and with the server".to_owned(),
            Ok(NamespacePlan::UserAndPid { .. }) => "a user + PID namespace per job: the whole tree dies with the job, on timeout, on cancel and with the server".to_owned(),
            Err(reason) => format!(
                "no PID namespace ({reason}): each job's helper is its subreaper, so every process it starts, setsid or not, stays below it and is killed when the job ends, times out or is canceled"
            ),
        };
        // SAFETY: a plain getter.
        let server = match unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) } {
            0 => "non-dumpable (harden_server_process was called)",
            _ => "DUMPABLE: call harden_server_process() at start",
        };
        format!("shell jobs run as: {}\nfile access: {landlock}\nprocesses: {namespace}\nserver process: {server}", self.job_user)
    }

    pub(crate) fn job_ids(&self) -> Option<(libc::uid_t, libc::gid_t)> {
        self.identity
    }

    /// The job's Landlock ruleset (None where Landlock is unavailable): system folders, devices,
    /// the work dir, and the command's extra paths. Paths that do not exist are skipped.
    pub(crate) fn ruleset(&self, work_dir: &Path, read_paths: &[PathBuf], write_paths: &[PathBuf]) -> io::Result<Option<OwnedFd>> {
        let Ok(abi) = self.landlock else {
            return Ok(None);
        };
        let ruleset = Ruleset::new(abi)?;
        let read = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR;
        let everything = ruleset.handled;
        for path in SYSTEM_READ {
            ruleset.allow(Path::new(path), if path.starts_with("/proc") || path.starts_with("/sys") { FS_READ_FILE | FS_READ_DIR } else { read })?;
        }
        for path in DEVICES {
            ruleset.allow(Path::new(path), FS_READ_FILE | FS_WRITE_FILE | FS_TRUNCATE)?;
        }
        for (paths, access) in [(read_paths, read), (write_paths, everything)] {
            for path in paths {
                if !ruleset.allow(path, access).map_err(|error| io::Error::new(error.kind(), format!("sandbox path {}: {error}", path.display())))? {
                    tracing::warn!(path = %path.display(), "a shell command's sandbox path does not exist; not granted");
                }
            }
        }
        if !ruleset.allow(work_dir, everything)? {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("{} is gone", work_dir.display())));
        }
        Ok(Some(ruleset.fd))
    }

    pub(crate) fn child_plan(&self, landlock_fd: Option<RawFd>) -> ChildPlan {
        ChildPlan {
            // SAFETY: plain getter.
            server_pid: unsafe { libc::getpid() },
            identity: self.identity,
            landlock_fd,
            namespace: self.namespace.as_ref().ok().copied(),
        }
    }
}

/// Everything the forked child needs, as plain values: nothing is allocated after the fork.
#[derive(Clone, Copy)]
pub(crate) struct ChildPlan {
    server_pid: libc::pid_t,
    identity: Option<(libc::uid_t, libc::gid_t)>,
    landlock_fd: Option<RawFd>,
    namespace: Option<NamespacePlan>,
}

impl ChildPlan {
    /// Runs in the child `Command::spawn` forked, after its chdir into the work dir (done as the
    /// server's user, so root-only ancestors are no obstacle) and before exec.
    ///
    /// With a PID namespace three processes come out of it:
    /// - **H** (this process, the one tokio waits for and kills): unshares, forks I, closes every
    ///   descriptor (so spawn's exec-error pipe and the output pipes do not wait on it), waits
    ///   for I and `_exit`s with I's status. It dies with the server (PDEATHSIG).
    /// - **I**, PID 1 of the new namespace: dies with H (PDEATHSIG; a pipe from H tells it if H
    ///   was already gone), forks J, closes every descriptor and reaps every process of the
    ///   namespace until J ends; it then `_exit`s with J's status (exit code, or 128 + signal),
    ///   and the kernel kills whatever is left in the namespace.
    /// - **J** returns from here: switches to the job user, enters Landlock, and std execs the
    ///   job's program.
    ///
    /// So killing H (timeout, cancel: tokio's `kill_on_drop`) kills I, which kills the
    /// namespace; the server dying kills H. PDEATHSIG fires when the *thread* that forked dies:
    /// the shell plugin spawns from the async task running the job, i.e. a tokio runtime thread,
    /// and those live as long as the runtime (a runtime shutting down ends its jobs anyway).
    ///
    /// Errors before a fork reach `spawn` through std's exec-error pipe as usual.
    ///
    /// # Safety
    /// Only between fork and exec in a child of this process: the code makes only
    /// async-signal-safe system calls (no allocation, no locks).
    pub(crate) unsafe fn enter(&self) -> io::Result<()> {
        unsafe {
            default_signal_actions();
            die_with_parent(self.server_pid)?;
            // Whatever descriptor the server leaked without O_CLOEXEC is closed at exec.
            libc::syscall(libc::SYS_close_range, 3 as libc::c_uint, libc::c_uint::MAX, CLOSE_RANGE_CLOEXEC);
            let reaper = match self.namespace {
                Some(namespace) => {
                    namespace.unshare()?;
                    Self::fork_init()?;
                    None
                }
                None => Some(Self::fork_reaper(self.server_pid)?),
            };
            // J.
            if let Some((uid, gid)) = self.identity {
                check(libc::setgroups(0, std::ptr::null()))?;
                check(libc::setgid(gid))?;
                check(libc::setuid(uid))?;
            }
            if let Some(reaper) = reaper {
                // Without a namespace the job must die with its reaper (and so with the server);
                // set after the credentials change, which clears PDEATHSIG.
                die_with_parent(reaper)?;
            }
            if let Some(fd) = self.landlock_fd {
                check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
                if libc::syscall(libc::SYS_landlock_restrict_self, fd, 0u32) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(())
    }

    /// Without a PID namespace (where `unshare` is refused, as on AWS Lambda): H makes itself
    /// the job's child subreaper and forks J, so every process J starts stays H's descendant
    /// even after `setsid` and after its parent exits (orphans are reparented to H, not to
    /// init). When J ends, H kills every process left below it ([`kill_own_descendants`]) and
    /// `_exit`s with J's status. On a timeout or a cancel the server kills H's descendants
    /// ([`kill_descendants_of`]) before H. Returns H's pid, in J.
    unsafe fn fork_reaper(server_pid: libc::pid_t) -> io::Result<libc::pid_t> {
        unsafe {
            let reaper = libc::getpid();
            check(libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))?;
            let job = libc::fork();
            if job < 0 {
                return Err(io::Error::last_os_error());
            }
            if job > 0 {
                close_fds(0, libc::c_uint::MAX);
                // The server dying (SIGKILL included) sends H a SIGTERM it can act on: it takes
                // the job's processes down before it goes, so nothing outlives a restart.
                REAPER_STOP.store(false, std::sync::atomic::Ordering::SeqCst);
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = note_stop as extern "C" fn(libc::c_int) as libc::sighandler_t;
                libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut());
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0);
                let status = loop {
                    if REAPER_STOP.load(std::sync::atomic::Ordering::SeqCst) || libc::getppid() != server_pid {
                        kill_own_descendants();
                        libc::_exit(128 + libc::SIGKILL);
                    }
                    let mut status = 0;
                    let waited = libc::waitpid(job, &mut status, 0);
                    if waited == job {
                        break status_code(status);
                    }
                    if waited < 0 && errno() != libc::EINTR {
                        break 255;
                    }
                };
                kill_own_descendants();
                libc::_exit(status);
            }
            Ok(reaper)
        }
    }

    /// H forks I (PID 1) and never returns; I forks J and never returns; J returns.
    unsafe fn fork_init() -> io::Result<()> {
        unsafe {
            let mut alive = [0 as libc::c_int; 2];
            check(libc::pipe2(alive.as_mut_ptr(), libc::O_CLOEXEC))?;
            let init = libc::fork();
            if init < 0 {
                return Err(io::Error::last_os_error());
            }
            if init > 0 {
                // H: keep only the write end of `alive` (I sees it close when H dies).
                let keep = alive[1] as libc::c_uint;
                if keep > 0 {
                    close_fds(0, keep - 1);
                }
                close_fds(keep + 1, libc::c_uint::MAX);
                libc::_exit(wait_for(init));
            }
            // I, PID 1 of the namespace.
            check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0))?;
            libc::close(alive[1]);
            let mut poll = libc::pollfd { fd: alive[0], events: libc::POLLIN, revents: 0 };
            if libc::poll(&mut poll, 1, 0) > 0 && poll.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                libc::_exit(128 + libc::SIGKILL); // H died before PDEATHSIG was set
            }
            libc::close(alive[0]);
            let job = libc::fork();
            if job < 0 {
                return Err(io::Error::last_os_error());
            }
            if job > 0 {
                close_fds(0, libc::c_uint::MAX);
                loop {
                    let mut status = 0;
                    let reaped = libc::waitpid(-1, &mut status, 0);
                    if reaped == job {
                        libc::_exit(status_code(status));
                    }
                    if reaped < 0 && errno() != libc::EINTR {
                        libc::_exit(255);
                    }
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harden_server_process_makes_the_process_non_dumpable() {
        harden_server_process();
        // SAFETY: a plain getter.
        assert_eq!(unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) }, 0);
    }

    #[test]
    fn a_job_user_is_a_name_or_numeric_ids() {
        assert_eq!(JobUser::parse("nobody"), Ok(JobUser::Name("nobody".into())));
        assert_eq!(JobUser::parse("1000:100"), Ok(JobUser::Ids { uid: 1000, gid: 100 }));
        assert!(JobUser::parse("1000:staff").unwrap_err().contains("numeric uid:gid"));
        assert!(JobUser::parse(" ").unwrap_err().contains("empty"));
    }

    #[test]
    fn an_unknown_or_root_job_user_is_a_clear_error() {
        let unknown = JobUser::Name("no-such-user-heimdall".into()).resolve().unwrap_err();
        assert!(unknown.contains("does not exist") && unknown.contains(JOB_USER_ENV), "{unknown}");
        let root = JobUser::Name("root".into()).resolve().unwrap_err();
        assert!(root.contains("never run as root"), "{root}");
        assert!(JobUser::Ids { uid: 0, gid: 0 }.resolve().unwrap_err().contains("never run as root"));
        assert_eq!(JobUser::Name("nobody".into()).resolve(), Ok((65534, 65534)));
    }

    #[test]
    fn the_report_names_each_mechanism() {
        let report = Confinement::new(&ShellSandbox::default()).unwrap().report();
        println!("{report}");
        assert!(report.contains("run as:") && report.contains("file access:") && report.contains("processes:") && report.contains("server process:"), "{report}");
    }
}
