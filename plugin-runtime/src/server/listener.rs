//! The listener the host dials: a Unix socket (go-plugin's default) or TCP on 127.0.0.1.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, UnixListener};

use super::env::{LaunchEnv, Network};

/// A bound listener; a Unix socket file is removed when this is dropped.
#[derive(Debug)]
pub(crate) enum Listener {
    Unix {
        listener: UnixListener,
        path: SocketFile,
    },
    Tcp {
        listener: TcpListener,
        addr: String,
    },
}

/// Removes the socket file on drop.
#[derive(Debug)]
pub(crate) struct SocketFile(pub(crate) PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Listener {
    /// `(network, address)` for the handshake line.
    pub(crate) fn describe(&self) -> (&'static str, String) {
        match self {
            Listener::Unix { path, .. } => ("unix", path.0.display().to_string()),
            Listener::Tcp { addr, .. } => ("tcp", addr.clone()),
        }
    }

    pub(crate) fn socket_path(&self) -> Option<&Path> {
        match self {
            Listener::Unix { path, .. } => Some(&path.0),
            Listener::Tcp { .. } => None,
        }
    }
}

/// Binds the listener the environment asks for.
pub(crate) async fn bind(env: &LaunchEnv) -> io::Result<Listener> {
    match env.network {
        Network::Unix => bind_unix(env),
        Network::Tcp => bind_tcp(env.min_port, env.max_port).await,
    }
}

fn bind_unix(env: &LaunchEnv) -> io::Result<Listener> {
    let dir = env.socket_dir.clone().unwrap_or_else(std::env::temp_dir);
    let mut last_err = None;
    for _ in 0..16 {
        let path = dir.join(format!("plugin{}", rand::random::<u32>()));
        // Owner-only from the start: bind under a tight umask, so no other user can ever
        // connect, even between bind and chmod.
        // SAFETY: umask only changes this process's file-creation mask.
        let old = unsafe { libc::umask(0o177) };
        let bound = UnixListener::bind(&path);
        // SAFETY: restores the previous mask.
        unsafe { libc::umask(old) };
        match bound {
            Ok(listener) => {
                let file = SocketFile(path);
                if let Some(group) = &env.socket_group {
                    set_group_writable(&file.0, group)?;
                }
                return Ok(Listener::Unix {
                    listener,
                    path: file,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last_err = Some(e),
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("couldn't bind plugin unix socket in {}: {e}", dir.display()),
                ));
            }
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("couldn't bind plugin unix socket")))
}

/// `PLUGIN_UNIX_SOCKET_GROUP`: a numeric gid or a group name; the socket becomes 0660.
fn set_group_writable(path: &Path, group: &str) -> io::Result<()> {
    let gid = match group.parse::<libc::gid_t>() {
        Ok(gid) => gid,
        Err(_) => lookup_group(group)?,
    };
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::other("socket path contains a NUL byte"))?;
    // SAFETY: c_path is a valid NUL-terminated path; -1 keeps the owner.
    if unsafe { libc::chown(c_path.as_ptr(), u32::MAX, gid) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("PLUGIN_UNIX_SOCKET_GROUP: cannot give the socket to group {group:?}: {e}"),
        ));
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
}

fn lookup_group(name: &str) -> io::Result<libc::gid_t> {
    let c_name = CString::new(name).map_err(|_| io::Error::other("group name contains NUL"))?;
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; buf outlives it.
    let rc = unsafe {
        libc::getgrnam_r(
            c_name.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "PLUGIN_UNIX_SOCKET_GROUP: expected a numeric gid or an existing group name, got {name:?}"
            ),
        ));
    }
    Ok(grp.gr_gid)
}

async fn bind_tcp(min: u16, max: u16) -> io::Result<Listener> {
    let ports: Vec<u16> = if min == 0 && max == 0 {
        vec![0]
    } else {
        (min..=max).collect()
    };
    for port in ports {
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await {
            let addr = listener.local_addr()?.to_string();
            return Ok(Listener::Tcp { listener, addr });
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("couldn't bind plugin TCP listener on 127.0.0.1 within ports {min}..={max}"),
    ))
}
