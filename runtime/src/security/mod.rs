//! Capabilities, rlimits, uid/gid, no_new_privs: how root inside the container is dropped.
