//! How a container process is born: clone into namespaces, sync with the parent, exec.
