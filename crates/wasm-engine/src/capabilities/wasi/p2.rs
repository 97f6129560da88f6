//! WASI 0.2: the audited interfaces, bound by `wasmtime::component::bindgen!` in
//! `wasmtime-wasi`; each function forwards to `wasmtime-wasi`'s.

use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::filesystem::WasiFilesystemView as _;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self, Advice, Descriptor, DescriptorFlags, DescriptorStat, DescriptorType, DirectoryEntry,
    DirectoryEntryStream, ErrorCode, Filesize, MetadataHashValue, NewTimestamp, OpenFlags,
    PathFlags,
};
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{self, ResolveAddressStream};
use wasmtime_wasi::p2::bindings::sockets::network::{self, IpAddress, IpAddressFamily, Network};
use wasmtime_wasi::p2::bindings::sockets::tcp_create_socket;
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, FsError, FsResult};
use wasmtime_wasi::p2::{DynPollable, SocketError, SocketResult, TcpSocket};
use wasmtime_wasi::sockets::WasiSocketsView as _;

use super::{AuditedWasi, Getter, HasAuditedWasi};

/// Links the audited `wasi:filesystem/types`.
pub(super) fn add_types<T: Send + 'static>(
    linker: &mut Linker<T>,
    audited: Getter<T>,
) -> wasmtime::Result<()> {
    types::add_to_linker::<T, HasAuditedWasi>(linker, audited)
}

/// Links the audited `wasi:sockets/tcp-create-socket`.
pub(super) fn add_tcp_create_socket<T: Send + 'static>(
    linker: &mut Linker<T>,
    audited: Getter<T>,
) -> wasmtime::Result<()> {
    tcp_create_socket::add_to_linker::<T, HasAuditedWasi>(linker, audited)
}

/// Links the audited `wasi:sockets/ip-name-lookup`.
pub(super) fn add_ip_name_lookup<T: Send + 'static>(
    linker: &mut Linker<T>,
    audited: Getter<T>,
) -> wasmtime::Result<()> {
    ip_name_lookup::add_to_linker::<T, HasAuditedWasi>(linker, audited)
}

impl AuditedWasi<'_> {
    /// Counts and logs `r` when it is a refusal for lack of permission.
    fn check<T>(&mut self, r: FsResult<T>, operation: &str, path: &str) -> FsResult<T> {
        if let Err(e) = &r
            && let Some(code) = e.downcast_ref()
            && matches!(code, ErrorCode::NotPermitted | ErrorCode::Access)
        {
            self.denied(operation, path, code.name());
        }
        r
    }
}

// `tcp-create-socket` and `ip-name-lookup` use `network`'s types: its (unchanged)
// functions, forwarded.
impl network::Host for AuditedWasi<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<network::ErrorCode> {
        network::Host::convert_error_code(&mut self.wasi.sockets(), error)
    }

    fn network_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<network::ErrorCode>> {
        network::Host::network_error_code(&mut self.wasi.sockets(), err)
    }
}

impl network::HostNetwork for AuditedWasi<'_> {
    fn drop(&mut self, this: Resource<Network>) -> wasmtime::Result<()> {
        network::HostNetwork::drop(&mut self.wasi.sockets(), this)
    }
}

impl tcp_create_socket::Host for AuditedWasi<'_> {
    fn create_tcp_socket(
        &mut self,
        address_family: IpAddressFamily,
    ) -> SocketResult<Resource<TcpSocket>> {
        let r =
            tcp_create_socket::Host::create_tcp_socket(&mut self.wasi.sockets(), address_family);
        if r.is_err() && self.capabilities.network.is_none() {
            self.tcp_denied();
        }
        r
    }
}

impl ip_name_lookup::Host for AuditedWasi<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> Result<Resource<ResolveAddressStream>, SocketError> {
        let dns = self.capabilities.allows_dns();
        let requested = if dns { String::new() } else { name.clone() };
        let r = ip_name_lookup::Host::resolve_addresses(&mut self.wasi.sockets(), network, name);
        if r.is_err() && !dns {
            self.dns_denied(&requested);
        }
        r
    }
}

impl ip_name_lookup::HostResolveAddressStream for AuditedWasi<'_> {
    fn resolve_next_address(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> Result<Option<IpAddress>, SocketError> {
        ip_name_lookup::HostResolveAddressStream::resolve_next_address(
            &mut self.wasi.sockets(),
            stream,
        )
    }

    fn subscribe(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        ip_name_lookup::HostResolveAddressStream::subscribe(&mut self.wasi.sockets(), stream)
    }

    async fn drop(&mut self, stream: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        ip_name_lookup::HostResolveAddressStream::drop(&mut self.wasi.sockets(), stream).await
    }
}

impl types::Host for AuditedWasi<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<ErrorCode> {
        types::Host::convert_error_code(&mut self.wasi.filesystem(), err)
    }

    fn filesystem_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        types::Host::filesystem_error_code(&mut self.wasi.filesystem(), err)
    }
}

use types::HostDescriptor as D;

impl types::HostDescriptor for AuditedWasi<'_> {
    async fn advise(
        &mut self,
        fd: Resource<Descriptor>,
        offset: Filesize,
        len: Filesize,
        advice: Advice,
    ) -> FsResult<()> {
        D::advise(&mut self.wasi.filesystem(), fd, offset, len, advice).await
    }

    async fn sync_data(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        D::sync_data(&mut self.wasi.filesystem(), fd).await
    }

    async fn get_flags(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorFlags> {
        D::get_flags(&mut self.wasi.filesystem(), fd).await
    }

    async fn get_type(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorType> {
        D::get_type(&mut self.wasi.filesystem(), fd).await
    }

    async fn set_size(&mut self, fd: Resource<Descriptor>, size: Filesize) -> FsResult<()> {
        let r = D::set_size(&mut self.wasi.filesystem(), fd, size).await;
        self.check(r, "set-size", "")
    }

    async fn set_times(
        &mut self,
        fd: Resource<Descriptor>,
        atim: NewTimestamp,
        mtim: NewTimestamp,
    ) -> FsResult<()> {
        let r = D::set_times(&mut self.wasi.filesystem(), fd, atim, mtim).await;
        self.check(r, "set-times", "")
    }

    async fn read(
        &mut self,
        fd: Resource<Descriptor>,
        len: Filesize,
        offset: Filesize,
    ) -> FsResult<(Vec<u8>, bool)> {
        D::read(&mut self.wasi.filesystem(), fd, len, offset).await
    }

    async fn write(
        &mut self,
        fd: Resource<Descriptor>,
        buf: Vec<u8>,
        offset: Filesize,
    ) -> FsResult<Filesize> {
        let r = D::write(&mut self.wasi.filesystem(), fd, buf, offset).await;
        self.check(r, "write", "")
    }

    async fn read_directory(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<Resource<DirectoryEntryStream>> {
        D::read_directory(&mut self.wasi.filesystem(), fd).await
    }

    async fn sync(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        D::sync(&mut self.wasi.filesystem(), fd).await
    }

    async fn create_directory_at(
        &mut self,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FsResult<()> {
        let r = D::create_directory_at(&mut self.wasi.filesystem(), fd, path.clone()).await;
        self.check(r, "create-directory", &path)
    }

    async fn stat(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorStat> {
        D::stat(&mut self.wasi.filesystem(), fd).await
    }

    async fn stat_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
    ) -> FsResult<DescriptorStat> {
        let r = D::stat_at(&mut self.wasi.filesystem(), fd, path_flags, path.clone()).await;
        self.check(r, "stat", &path)
    }

    async fn set_times_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
        atim: NewTimestamp,
        mtim: NewTimestamp,
    ) -> FsResult<()> {
        let fs = &mut self.wasi.filesystem();
        let r = D::set_times_at(fs, fd, path_flags, path.clone(), atim, mtim).await;
        self.check(r, "set-times", &path)
    }

    async fn link_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path_flags: PathFlags,
        old_path: String,
        new_descriptor: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        let fs = &mut self.wasi.filesystem();
        let r = D::link_at(
            fs,
            fd,
            old_path_flags,
            old_path.clone(),
            new_descriptor,
            new_path.clone(),
        )
        .await;
        self.check(r, "link", &format!("{old_path} -> {new_path}"))
    }

    async fn open_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
        oflags: OpenFlags,
        flags: DescriptorFlags,
    ) -> FsResult<Resource<Descriptor>> {
        let fs = &mut self.wasi.filesystem();
        let r = D::open_at(fs, fd, path_flags, path.clone(), oflags, flags).await;
        self.check(r, "open", &path)
    }

    fn drop(&mut self, fd: Resource<Descriptor>) -> wasmtime::Result<()> {
        D::drop(&mut self.wasi.filesystem(), fd)
    }

    async fn readlink_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<String> {
        let r = D::readlink_at(&mut self.wasi.filesystem(), fd, path.clone()).await;
        self.check(r, "readlink", &path)
    }

    async fn remove_directory_at(
        &mut self,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FsResult<()> {
        let r = D::remove_directory_at(&mut self.wasi.filesystem(), fd, path.clone()).await;
        self.check(r, "remove-directory", &path)
    }

    async fn rename_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path: String,
        new_fd: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        let fs = &mut self.wasi.filesystem();
        let r = D::rename_at(fs, fd, old_path.clone(), new_fd, new_path.clone()).await;
        self.check(r, "rename", &format!("{old_path} -> {new_path}"))
    }

    async fn symlink_at(
        &mut self,
        fd: Resource<Descriptor>,
        src_path: String,
        dest_path: String,
    ) -> FsResult<()> {
        let fs = &mut self.wasi.filesystem();
        let r = D::symlink_at(fs, fd, src_path.clone(), dest_path.clone()).await;
        self.check(r, "symlink", &format!("{dest_path} -> {src_path}"))
    }

    async fn unlink_file_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        let r = D::unlink_file_at(&mut self.wasi.filesystem(), fd, path.clone()).await;
        self.check(r, "unlink", &path)
    }

    fn read_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: Filesize,
    ) -> FsResult<Resource<DynInputStream>> {
        D::read_via_stream(&mut self.wasi.filesystem(), fd, offset)
    }

    fn write_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: Filesize,
    ) -> FsResult<Resource<DynOutputStream>> {
        let r = D::write_via_stream(&mut self.wasi.filesystem(), fd, offset);
        self.check(r, "write", "")
    }

    fn append_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<Resource<DynOutputStream>> {
        let r = D::append_via_stream(&mut self.wasi.filesystem(), fd);
        self.check(r, "append", "")
    }

    async fn is_same_object(
        &mut self,
        a: Resource<Descriptor>,
        b: Resource<Descriptor>,
    ) -> wasmtime::Result<bool> {
        D::is_same_object(&mut self.wasi.filesystem(), a, b).await
    }

    async fn metadata_hash(&mut self, fd: Resource<Descriptor>) -> FsResult<MetadataHashValue> {
        D::metadata_hash(&mut self.wasi.filesystem(), fd).await
    }

    async fn metadata_hash_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
    ) -> FsResult<MetadataHashValue> {
        let fs = &mut self.wasi.filesystem();
        let r = D::metadata_hash_at(fs, fd, path_flags, path.clone()).await;
        self.check(r, "stat", &path)
    }
}

impl types::HostDirectoryEntryStream for AuditedWasi<'_> {
    async fn read_directory_entry(
        &mut self,
        stream: Resource<DirectoryEntryStream>,
    ) -> FsResult<Option<DirectoryEntry>> {
        types::HostDirectoryEntryStream::read_directory_entry(&mut self.wasi.filesystem(), stream)
            .await
    }

    fn drop(&mut self, stream: Resource<DirectoryEntryStream>) -> wasmtime::Result<()> {
        types::HostDirectoryEntryStream::drop(&mut self.wasi.filesystem(), stream)
    }
}
