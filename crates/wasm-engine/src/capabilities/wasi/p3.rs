//! WASI 0.3: the audited interfaces. `wasi:filesystem/types` and
//! `wasi:sockets/ip-name-lookup` through their bindings in `wasmtime-wasi` (each
//! function forwards to `wasmtime-wasi`'s, the asynchronous ones with the store's
//! accessor pointed at `wasmtime-wasi`'s view); of `wasi:sockets/types`, only
//! `tcp-socket.create` is shadowed, as one function.
//!
//! One difference from WASI 0.2: a write through `write-via-stream` on a descriptor
//! opened read-only is refused in the stream's future, where this layer does not see
//! it. Opening a file for writing in a read-only directory — where such a write starts
//! — is refused by `open-at`, and audited.

use wasmtime::AsContextMut as _;
use wasmtime::component::{
    Access, Accessor, FutureReader, HasData, Linker, Resource, StreamReader,
};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystem, WasiFilesystemView};
use wasmtime_wasi::p3::bindings::filesystem::types::{
    self, Advice, DescriptorFlags, DescriptorStat, DescriptorType, DirectoryEntry, ErrorCode,
    Filesize, MetadataHashValue, NewTimestamp, OpenFlags, PathFlags,
};
use wasmtime_wasi::p3::bindings::sockets::types::{HostTcpSocket as _, IpAddressFamily};
use wasmtime_wasi::p3::bindings::sockets::{ip_name_lookup, types as sockets};
use wasmtime_wasi::p3::filesystem::{FilesystemError, FilesystemResult};
use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsView};

use super::{AuditedWasi, Getter};

/// The [`HasData`] whose functions are the audited WASI 0.3 ones.
pub(crate) struct AuditedP3;

impl HasData for AuditedP3 {
    type Data<'a> = AuditedWasi<'a>;
}

/// The version of WASI 0.3 that `wasmtime-wasi` links.
const SOCKETS_TYPES: &str = "wasi:sockets/types@0.3.0";

/// Links the audited `wasi:filesystem/types`.
pub(super) fn add_types<T: WasiView + 'static>(
    linker: &mut Linker<T>,
    audited: Getter<T>,
) -> wasmtime::Result<()> {
    types::add_to_linker::<T, AuditedP3>(linker, audited)
}

/// Links the audited `wasi:sockets/ip-name-lookup`.
pub(super) fn add_ip_name_lookup<T: WasiView + 'static>(
    linker: &mut Linker<T>,
    audited: Getter<T>,
) -> wasmtime::Result<()> {
    ip_name_lookup::add_to_linker::<T, AuditedP3>(linker, audited)
}

/// Links `wasmtime-wasi`'s `wasi:sockets/types`, with `tcp-socket.create` audited
/// over it (shadowing its one function rather than forwarding the ~40 others).
pub(super) fn add_sockets_types<T: WasiView + 'static>(
    linker: &mut Linker<T>,
    audited: Getter<T>,
) -> wasmtime::Result<()> {
    sockets::add_to_linker::<T, WasiSockets>(linker, T::sockets)?;
    linker.allow_shadowing(true);
    let shadowed = shadow_tcp_create(linker, audited);
    linker.allow_shadowing(false);
    shadowed
}

fn shadow_tcp_create<T: WasiView + 'static>(
    linker: &mut Linker<T>,
    audited: Getter<T>,
) -> wasmtime::Result<()> {
    linker.instance(SOCKETS_TYPES)?.func_wrap(
        "[static]tcp-socket.create",
        move |mut store, (family,): (IpAddressFamily,)| {
            let mut view = audited(store.data_mut());
            let r = view.wasi.sockets().create(family);
            let r = match r {
                Ok(socket) => Ok(socket),
                Err(e) => {
                    if view.capabilities.network.is_none() {
                        view.tcp_denied();
                    }
                    Err(sockets::Host::convert_error_code(
                        &mut view.wasi.sockets(),
                        e,
                    )?)
                }
            };
            Ok((r,))
        },
    )?;
    Ok(())
}

/// `wasmtime-wasi`'s view of the store, which its WASI 0.3 functions take. (Through
/// the store's `WasiView`, whose getter marks the call as a WASI one.)
fn filesystem<T: WasiView>(state: &mut T) -> wasmtime_wasi::filesystem::WasiFilesystemCtxView<'_> {
    state.filesystem()
}

/// The same, for sockets.
fn sockets_view<T: WasiView>(state: &mut T) -> wasmtime_wasi::sockets::WasiSocketsCtxView<'_> {
    state.sockets()
}

/// `wasmtime-wasi`'s accessor, for forwarding an asynchronous function to it.
fn fs<T: WasiView + 'static>(store: &Accessor<T, AuditedP3>) -> Accessor<T, WasiFilesystem> {
    store.with_getter::<WasiFilesystem>(filesystem)
}

/// `wasmtime-wasi`'s access, for forwarding a synchronous function to it.
fn fs_now<'a, T: WasiView + 'static>(
    store: &'a mut Access<'_, T, AuditedP3>,
) -> Access<'a, T, WasiFilesystem> {
    Access::<T, WasiFilesystem>::new(store.as_context_mut(), filesystem)
}

/// Counts and logs `r` when it is a refusal for lack of permission.
async fn check<T: WasiView + 'static, R>(
    store: &Accessor<T, AuditedP3>,
    r: FilesystemResult<R>,
    operation: &str,
    path: &str,
) -> FilesystemResult<R> {
    if let Err(e) = &r
        && let Some(code) = e.downcast_ref()
    {
        let name = match code {
            ErrorCode::NotPermitted => Some("not-permitted"),
            ErrorCode::Access => Some("access"),
            _ => None,
        };
        if let Some(name) = name {
            store.with(|mut s| s.get().denied(operation, path, name));
        }
    }
    r
}

type D = WasiFilesystem;
use types::HostDescriptorWithStore as W;

impl types::Host for AuditedWasi<'_> {
    fn convert_error_code(&mut self, error: FilesystemError) -> wasmtime::Result<ErrorCode> {
        types::Host::convert_error_code(&mut self.wasi.filesystem(), error)
    }
}

impl types::HostDescriptor for AuditedWasi<'_> {
    fn drop(&mut self, fd: Resource<Descriptor>) -> wasmtime::Result<()> {
        types::HostDescriptor::drop(&mut self.wasi.filesystem(), fd)
    }
}

impl<T: WasiView + 'static> types::HostDescriptorWithStore<T> for AuditedP3 {
    fn read_via_stream(
        mut store: Access<'_, T, Self>,
        fd: Resource<Descriptor>,
        offset: Filesize,
    ) -> wasmtime::Result<(StreamReader<u8>, FutureReader<Result<(), ErrorCode>>)> {
        <D as W<T>>::read_via_stream(fs_now(&mut store), fd, offset)
    }

    fn write_via_stream(
        mut store: Access<'_, T, Self>,
        fd: Resource<Descriptor>,
        data: StreamReader<u8>,
        offset: Filesize,
    ) -> wasmtime::Result<FutureReader<Result<(), ErrorCode>>> {
        <D as W<T>>::write_via_stream(fs_now(&mut store), fd, data, offset)
    }

    fn append_via_stream(
        mut store: Access<'_, T, Self>,
        fd: Resource<Descriptor>,
        data: StreamReader<u8>,
    ) -> wasmtime::Result<FutureReader<Result<(), ErrorCode>>> {
        <D as W<T>>::append_via_stream(fs_now(&mut store), fd, data)
    }

    async fn advise(
        store: &Accessor<T, Self>,
        fd: Resource<Descriptor>,
        offset: Filesize,
        length: Filesize,
        advice: Advice,
    ) -> FilesystemResult<()> {
        <D as W<T>>::advise(&fs(store), fd, offset, length, advice).await
    }

    async fn sync_data(
        store: &Accessor<T, Self>,
        fd: Resource<Descriptor>,
    ) -> FilesystemResult<()> {
        <D as W<T>>::sync_data(&fs(store), fd).await
    }

    async fn get_flags(
        store: &Accessor<T, Self>,
        fd: Resource<Descriptor>,
    ) -> FilesystemResult<DescriptorFlags> {
        <D as W<T>>::get_flags(&fs(store), fd).await
    }

    async fn get_type(
        store: &Accessor<T, Self>,
        fd: Resource<Descriptor>,
    ) -> FilesystemResult<DescriptorType> {
        <D as W<T>>::get_type(&fs(store), fd).await
    }

    async fn set_size(
        store: &Accessor<T, Self>,
        fd: Resource<Descriptor>,
        size: Filesize,
    ) -> FilesystemResult<()> {
        let r = <D as W<T>>::set_size(&fs(store), fd, size).await;
        check(store, r, "set-size", "").await
    }

    async fn set_times(
        store: &Accessor<T, Self>,
        fd: Resource<Descriptor>,
        atim: NewTimestamp,
        mtim: NewTimestamp,
    ) -> FilesystemResult<()> {
        let r = <D as W<T>>::set_times(&fs(store), fd, atim, mtim).await;
        check(store, r, "set-times", "").await
    }

    fn read_directory(
        mut store: Access<'_, T, Self>,
        fd: Resource<Descriptor>,
    ) -> wasmtime::Result<(
        StreamReader<DirectoryEntry>,
        FutureReader<Result<(), ErrorCode>>,
    )> {
        <D as W<T>>::read_directory(fs_now(&mut store), fd)
    }

    async fn sync(store: &Accessor<T, Self>, fd: Resource<Descriptor>) -> FilesystemResult<()> {
        <D as W<T>>::sync(&fs(store), fd).await
    }

    async fn create_directory_at(
        store: &Accessor<T, Self>,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FilesystemResult<()> {
        let r = <D as W<T>>::create_directory_at(&fs(store), fd, path.clone()).await;
        check(store, r, "create-directory", &path).await
    }

    async fn stat(
        store: &Accessor<T, Self>,
        fd: Resource<Descriptor>,
    ) -> FilesystemResult<DescriptorStat> {
        <D as W<T>>::stat(&fs(store), fd).await
    }

    async fn stat_at(
        store: &Accessor<T, Self>,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
    ) -> FilesystemResult<DescriptorStat> {
        let r = <D as W<T>>::stat_at(&fs(store), fd, path_flags, path.clone()).await;
        check(store, r, "stat", &path).await
    }

    async fn set_times_at(
        store: &Accessor<T, Self>,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
        atim: NewTimestamp,
        mtim: NewTimestamp,
    ) -> FilesystemResult<()> {
        let r =
            <D as W<T>>::set_times_at(&fs(store), fd, path_flags, path.clone(), atim, mtim).await;
        check(store, r, "set-times", &path).await
    }

    async fn link_at(
        store: &Accessor<T, Self>,
        fd: Resource<Descriptor>,
        old_path_flags: PathFlags,
        old_path: String,
        new_fd: Resource<Descriptor>,
        new_path: String,
    ) -> FilesystemResult<()> {
        let what = format!("{old_path} -> {new_path}");
        let r =
            <D as W<T>>::link_at(&fs(store), fd, old_path_flags, old_path, new_fd, new_path).await;
        check(store, r, "link", &what).await
    }

    async fn open_at(
        store: &Accessor<T, Self>,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
        open_flags: OpenFlags,
        flags: DescriptorFlags,
    ) -> FilesystemResult<Resource<Descriptor>> {
        let r =
            <D as W<T>>::open_at(&fs(store), fd, path_flags, path.clone(), open_flags, flags).await;
        check(store, r, "open", &path).await
    }

    async fn readlink_at(
        store: &Accessor<T, Self>,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FilesystemResult<String> {
        let r = <D as W<T>>::readlink_at(&fs(store), fd, path.clone()).await;
        check(store, r, "readlink", &path).await
    }

    async fn remove_directory_at(
        store: &Accessor<T, Self>,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FilesystemResult<()> {
        let r = <D as W<T>>::remove_directory_at(&fs(store), fd, path.clone()).await;
        check(store, r, "remove-directory", &path).await
    }

    async fn rename_at(
        store: &Accessor<T, Self>,
        fd: Resource<Descriptor>,
        old_path: String,
        new_fd: Resource<Descriptor>,
        new_path: String,
    ) -> FilesystemResult<()> {
        let what = format!("{old_path} -> {new_path}");
        let r = <D as W<T>>::rename_at(&fs(store), fd, old_path, new_fd, new_path).await;
        check(store, r, "rename", &what).await
    }

    async fn symlink_at(
        store: &Accessor<T, Self>,
        fd: Resource<Descriptor>,
        old_path: String,
        new_path: String,
    ) -> FilesystemResult<()> {
        let what = format!("{new_path} -> {old_path}");
        let r = <D as W<T>>::symlink_at(&fs(store), fd, old_path, new_path).await;
        check(store, r, "symlink", &what).await
    }

    async fn unlink_file_at(
        store: &Accessor<T, Self>,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FilesystemResult<()> {
        let r = <D as W<T>>::unlink_file_at(&fs(store), fd, path.clone()).await;
        check(store, r, "unlink", &path).await
    }

    async fn is_same_object(
        store: &Accessor<T, Self>,
        fd: Resource<Descriptor>,
        other: Resource<Descriptor>,
    ) -> wasmtime::Result<bool> {
        <D as W<T>>::is_same_object(&fs(store), fd, other).await
    }

    async fn metadata_hash(
        store: &Accessor<T, Self>,
        fd: Resource<Descriptor>,
    ) -> FilesystemResult<MetadataHashValue> {
        <D as W<T>>::metadata_hash(&fs(store), fd).await
    }

    async fn metadata_hash_at(
        store: &Accessor<T, Self>,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
    ) -> FilesystemResult<MetadataHashValue> {
        let r = <D as W<T>>::metadata_hash_at(&fs(store), fd, path_flags, path.clone()).await;
        check(store, r, "stat", &path).await
    }
}

impl ip_name_lookup::Host for AuditedWasi<'_> {}

impl<T: WasiView + 'static> ip_name_lookup::HostWithStore<T> for AuditedP3 {
    async fn resolve_addresses(
        store: &Accessor<T, Self>,
        name: String,
    ) -> wasmtime::Result<Result<Vec<sockets::IpAddress>, ip_name_lookup::ErrorCode>> {
        let dns = store.with(|mut s| s.get().capabilities.allows_dns());
        let requested = if dns { String::new() } else { name.clone() };
        let sockets = store.with_getter::<WasiSockets>(sockets_view);
        let r =
            <WasiSockets as ip_name_lookup::HostWithStore<T>>::resolve_addresses(&sockets, name)
                .await;
        if matches!(r, Ok(Err(_))) && !dns {
            store.with(|mut s| s.get().dns_denied(&requested));
        }
        r
    }
}
