//! Process-level duties: memory locking, panic reporting, and leaving with the host.

use std::time::Duration;

use super::env::read_bao_or_vault;
use super::services::Shutdown;

/// `BAO_`/`VAULT_PLUGIN_MLOCK_ENABLED=true`: lock all memory, as Go plugins do with
/// `OptionallyEnableMlock`. The error names the fix operators expect.
pub(crate) fn lock_memory_if_asked() -> Result<(), String> {
    let asked = read_bao_or_vault(&|k| std::env::var_os(k), "PLUGIN_MLOCK_ENABLED")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if !asked {
        return Ok(());
    }
    // SAFETY: mlockall only changes this process's paging behaviour.
    if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } == 0 {
        tracing::debug!("memory locked (mlock enabled by the host)");
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    Err(format!(
        "failed to lock memory: {e}; the host enabled mlock for plugins: grant the plugin binary \
         the IPC_LOCK capability (`setcap cap_ipc_lock=+ep <plugin binary>`) or raise its \
         memlock limit, or disable mlock in the host (`disable_mlock = true`)"
    ))
}

/// Panics in a plugin author's code become one hclog error line (the call itself gets an
/// `Internal` error), instead of Rust's multi-line text on stderr.
pub(crate) fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string panic payload".to_owned());
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if super::call::in_call() {
            // Inside a plugin call the message may hold the request's secrets: the call
            // logs it once they are removed.
            super::call::record_panic_location(location);
        } else {
            tracing::error!(location, "plugin panicked: {payload}");
        }
    }));
}

/// Leaves when the host dies: the host never gets to call `Shutdown` then, and a plugin
/// that outlives it holds database connections and its socket file. The kernel's
/// parent-death signal (Linux) delivers SIGTERM at once; polling the parent pid covers the
/// race at start-up and other systems.
pub(crate) fn exit_with_parent(shutdown: Shutdown) {
    let parent = parent_pid();
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_PDEATHSIG with a valid signal number only sets a process attribute.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
    }
    tokio::spawn(async move {
        loop {
            if parent_pid() != parent {
                tracing::warn!("the host process is gone; shutting down");
                shutdown.trigger();
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

/// The parent process id (the host, or init once the host is gone).
pub(crate) fn parent_pid() -> i32 {
    // SAFETY: getppid has no preconditions.
    unsafe { libc::getppid() }
}

/// Processes the plugin started must not outlive it (the host waits for the plugin's
/// stdout and stderr to close, which children holding them would delay): SIGTERM every
/// direct child, then SIGKILL those still there 100 ms later.
pub(crate) fn end_children() {
    #[cfg(target_os = "linux")]
    {
        let children = || -> Vec<i32> {
            let me = std::process::id().to_string();
            let Ok(entries) = std::fs::read_dir("/proc") else {
                return Vec::new();
            };
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .filter(|pid| {
                    // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces.
                    std::fs::read_to_string(format!("/proc/{pid}/stat"))
                        .ok()
                        .and_then(|s| {
                            let (_, rest) = s.rsplit_once(')')?;
                            Some(rest.split_whitespace().nth(1)? == me)
                        })
                        .unwrap_or(false)
                })
                .collect()
        };
        let first = children();
        if first.is_empty() {
            return;
        }
        for pid in &first {
            // SAFETY: kill only sends a signal to a process id read just now.
            unsafe { libc::kill(*pid, libc::SIGTERM) };
        }
        std::thread::sleep(Duration::from_millis(100));
        for pid in children() {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// After a burst of calls, once no call has started for a second, hands the heap pages the
/// burst freed back to the operating system. glibc's allocator keeps freed pages resident
/// (only the top of each heap is trimmed), so without this a plugin's memory stays at its
/// peak after, say, a mass revocation; Go's runtime scavenges its heap the same way.
pub(crate) fn release_memory_when_idle() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tokio::spawn(async {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seen = super::call::calls_started();
        let mut busy = false;
        loop {
            tick.tick().await;
            let now = super::call::calls_started();
            if now != seen {
                seen = now;
                busy = true;
            } else if busy {
                busy = false;
                // It walks every arena under its lock: keep it off the async workers.
                let _ = tokio::task::spawn_blocking(|| {
                    // SAFETY: malloc_trim only returns free pages of the allocator's own
                    // arenas to the kernel; it does not touch live allocations.
                    unsafe { libc::malloc_trim(0) };
                })
                .await;
            }
        }
    });
}
