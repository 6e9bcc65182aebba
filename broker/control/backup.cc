#include "control/backup.h"

#include <fcntl.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/time_util.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "audit/audit_trail.h"
#include "audit/published_checkpoint.h"
#include "ibsm/certificates.h"
#include "ibsm/crypto.h"
#include "ibsm/merkle.h"
#include "ibsm/status_macros.h"
#include "storage/durable_file.h"

namespace ibsm::broker {
namespace {

namespace fs = std::filesystem;

// SHA-256 over bytes given in pieces.
class StreamHash {
 public:
  StreamHash() : ctx_(EVP_MD_CTX_new()) {
    EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr);
  }
  ~StreamHash() { EVP_MD_CTX_free(ctx_); }
  StreamHash(const StreamHash&) = delete;
  StreamHash& operator=(const StreamHash&) = delete;
  void Update(absl::string_view bytes) {
    EVP_DigestUpdate(ctx_, bytes.data(), bytes.size());
  }
  std::string Final() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    EVP_DigestFinal_ex(ctx_, digest, &size);
    return std::string(reinterpret_cast<const char*>(digest), size);
  }

 private:
  EVP_MD_CTX* ctx_;
};

// SHA-256 and size of the file at `path`.
absl::StatusOr<std::pair<std::string, uint64_t>> HashFile(
    const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  StreamHash hash;
  std::string buffer(kBackupChunkBytes, '\0');
  uint64_t size = 0;
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize n = in.gcount();
    if (n <= 0) break;
    hash.Update(absl::string_view(buffer.data(), static_cast<size_t>(n)));
    size += static_cast<uint64_t>(n);
  }
  if (in.bad()) {
    return absl::FailedPreconditionError(absl::StrCat("cannot read ", path));
  }
  return std::make_pair(hash.Final(), size);
}

bool PlainFileName(absl::string_view name) {
  return !name.empty() && name.size() <= kMaxBackupFileNameBytes &&
         name != "." && name != ".." &&
         name.find_first_of(absl::string_view("/\0", 2)) ==
             absl::string_view::npos &&
         name != kBackupManifestFile && name != kBackupCheckpointNoteFile;
}

absl::Status RequireEmptyOrAbsent(const std::string& dir,
                                  absl::string_view what) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    fs::create_directory(dir, ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create ", what, " ", dir, ": ", ec.message(),
                       " (its parent directory must exist)"));
    }
    fs::permissions(dir, fs::perms::owner_all, ec);
    return absl::OkStatus();
  }
  if (!fs::is_directory(dir, ec) || !fs::is_empty(dir, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, " ", dir,
        " exists and is not an empty directory; nothing is overwritten: "
        "give a new directory (or move this one aside)"));
  }
  return absl::OkStatus();
}

// The state of an opened copy, checked: its latest checkpoint's root is
// the root of its trail at that size.
absl::Status ReadCopyState(const Store& copy, v1::BackupManifest* manifest) {
  manifest->set_last_sequence(copy.recovered_last_sequence());
  IBSM_ASSIGN_OR_RETURN(uint64_t audit_size, AuditSize(copy));
  manifest->set_audit_size(audit_size);
  absl::StatusOr<v1::SignedCheckpoint> latest = LatestCheckpoint(copy);
  if (!latest.ok()) {
    if (absl::IsNotFound(latest.status())) return absl::OkStatus();
    return latest.status();
  }
  IBSM_ASSIGN_OR_RETURN(Hash root,
                        RootHash(StoredMerkleTree(&copy), latest->tree_size()));
  if (latest->tree_size() > audit_size ||
      crypto::HashView(root) != latest->root_hash()) {
    return absl::DataLossError(
        absl::StrCat("the copy's audit trail of ", audit_size,
                     " records does not match its latest signed checkpoint (",
                     latest->tree_size(), " records)"));
  }
  *manifest->mutable_checkpoint() = *std::move(latest);
  return absl::OkStatus();
}

std::string Mib(uint64_t bytes) {
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1 << 20));
}

}  // namespace

std::string BackupStagingDir(const std::string& data_dir) {
  std::string dir = data_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir + ".backup-staging";
}

struct StagedBackup::Reader {
  std::ifstream in;
  uint64_t offset = 0;
  StreamHash hash;
};

StagedBackup::StagedBackup(std::string dir, v1::BackupManifest manifest)
    : dir_(std::move(dir)), manifest_(std::move(manifest)) {}

StagedBackup::~StagedBackup() {
  reader_.reset();
  std::error_code ec;
  // A left-over directory is removed by the next backup.
  fs::remove_all(dir_, ec);
}

absl::StatusOr<std::unique_ptr<StagedBackup>> StagedBackup::Create(
    const Store& store, const StoreOptions& copy_options,
    const std::string& broker_version) {
  const std::string& dir = copy_options.path;
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot remove the old staging directory ", dir, ": ", ec.message()));
  }
  v1::BackupManifest manifest;
  manifest.set_format(kBackupFormat);
  manifest.set_node_id(copy_options.node_id);
  manifest.set_broker_version(broker_version);
  *manifest.mutable_created_at() =
      google::protobuf::util::TimeUtil::GetCurrentTime();
  // Owns the directory from here on, so any failure below removes it.
  std::unique_ptr<StagedBackup> staged(new StagedBackup(dir, manifest));
  IBSM_RETURN_IF_ERROR(store.WriteCheckpoint(dir));
  {
    IBSM_ASSIGN_OR_RETURN(std::unique_ptr<Store> copy,
                          Store::Open(copy_options));
    IBSM_RETURN_IF_ERROR(ReadCopyState(*copy, &staged->manifest_));
    IBSM_RETURN_IF_ERROR(copy->Flush());
  }
  std::vector<std::string> names;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file()) {
      return absl::InternalError(absl::StrCat("the checkpoint in ", dir,
                                              " holds ", entry.path().string(),
                                              ", which is not a regular file"));
    }
    names.push_back(entry.path().filename().string());
  }
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot list ", dir, ": ", ec.message()));
  }
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    v1::BackupFile* file = staged->manifest_.add_files();
    file->set_name(name);
    file->set_size(fs::file_size(fs::path(dir) / name, ec));
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot stat ", dir, "/", name, ": ", ec.message()));
    }
  }
  return staged;
}

uint64_t StagedBackup::total_bytes() const {
  uint64_t total = 0;
  for (const v1::BackupFile& file : manifest_.files()) total += file.size();
  return total;
}

absl::StatusOr<std::optional<v1::BackupChunk>> StagedBackup::NextChunk() {
  if (next_file_ >= static_cast<size_t>(manifest_.files_size())) {
    return std::optional<v1::BackupChunk>();
  }
  v1::BackupFile* file = manifest_.mutable_files(static_cast<int>(next_file_));
  const std::string path = absl::StrCat(dir_, "/", file->name());
  if (!reader_) {
    reader_ = std::make_unique<Reader>();
    reader_->in.open(path, std::ios::binary);
    if (!reader_->in) {
      return absl::InternalError(absl::StrCat("cannot read ", path));
    }
  }
  v1::BackupChunk chunk;
  chunk.set_file(file->name());
  chunk.set_offset(reader_->offset);
  const uint64_t left = file->size() - std::min(file->size(), reader_->offset);
  std::string* data = chunk.mutable_data();
  data->resize(
      static_cast<size_t>(std::min<uint64_t>(left, kBackupChunkBytes)));
  reader_->in.read(data->data(), static_cast<std::streamsize>(data->size()));
  if (static_cast<size_t>(reader_->in.gcount()) != data->size()) {
    return absl::InternalError(
        absl::StrCat("short read of ", path, " at offset ", reader_->offset,
                     " (the staged copy changed while it was sent)"));
  }
  reader_->hash.Update(*data);
  reader_->offset += data->size();
  if (reader_->offset >= file->size()) {
    file->set_sha256(reader_->hash.Final());
    reader_.reset();
    ++next_file_;
  }
  return std::optional<v1::BackupChunk>(std::move(chunk));
}

absl::StatusOr<std::unique_ptr<BackupWriter>> BackupWriter::Open(
    const std::string& dir) {
  IBSM_RETURN_IF_ERROR(RequireEmptyOrAbsent(dir, "backup directory"));
  return std::unique_ptr<BackupWriter>(new BackupWriter(dir));
}

BackupWriter::~BackupWriter() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status BackupWriter::CloseFile() {
  if (fd_ < 0) return absl::OkStatus();
  const bool synced = ::fsync(fd_) == 0;
  ::close(fd_);
  fd_ = -1;
  if (!synced)
    return ErrnoError("sync", absl::StrCat(dir_, "/", names_.back()));
  return absl::OkStatus();
}

absl::Status BackupWriter::Add(const v1::BackupChunk& chunk) {
  const bool same_file = !names_.empty() && chunk.file() == names_.back();
  if (!same_file) {
    if (!PlainFileName(chunk.file()) ||
        (!names_.empty() && chunk.file() <= names_.back())) {
      return absl::DataLossError(absl::StrCat(
          "the node sent a chunk of file '", absl::CHexEscape(chunk.file()),
          "', which is not a plain file name in order"));
    }
    if (names_.size() >= kMaxBackupFiles) {
      return absl::DataLossError(
          absl::StrCat("the node sent more than ", kMaxBackupFiles, " files"));
    }
    IBSM_RETURN_IF_ERROR(CloseFile());
    names_.push_back(chunk.file());
    offset_ = 0;
    const std::string path = absl::StrCat(dir_, "/", chunk.file());
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd_ < 0) return ErrnoError("create", path);
  }
  if (chunk.offset() != offset_) {
    return absl::DataLossError(absl::StrCat("the node sent ", chunk.file(),
                                            " at offset ", chunk.offset(),
                                            ", expected ", offset_));
  }
  if (!WriteAll(fd_, chunk.data())) {
    return ErrnoError("write", absl::StrCat(dir_, "/", chunk.file()));
  }
  offset_ += chunk.data().size();
  bytes_ += chunk.data().size();
  return absl::OkStatus();
}

absl::Status BackupWriter::Finish(const v1::BackupManifest& manifest,
                                  const std::string& expected_node_id) {
  IBSM_RETURN_IF_ERROR(CloseFile());
  if (manifest.format() != kBackupFormat) {
    return absl::DataLossError(absl::StrCat("the node sent a backup of format ",
                                            manifest.format(), ", not ",
                                            kBackupFormat));
  }
  if (manifest.node_id() != expected_node_id) {
    return absl::DataLossError(absl::StrCat("the node sent a backup of node ",
                                            manifest.node_id(), ", not ",
                                            expected_node_id));
  }
  if (static_cast<size_t>(manifest.files_size()) != names_.size()) {
    return absl::DataLossError(
        absl::StrCat("the manifest lists ", manifest.files_size(),
                     " files, the node sent ", names_.size()));
  }
  for (const v1::BackupFile& file : manifest.files()) {
    IBSM_ASSIGN_OR_RETURN(auto hashed,
                          HashFile(absl::StrCat(dir_, "/", file.name())));
    if (hashed.second != file.size() || hashed.first != file.sha256()) {
      return absl::DataLossError(absl::StrCat(
          "file ", file.name(), " of the backup does not match the manifest (",
          hashed.second, " bytes received, ", file.size(), " listed)"));
    }
  }
  if (manifest.has_checkpoint()) {
    IBSM_RETURN_IF_ERROR(
        WriteNewFile(absl::StrCat(dir_, "/", kBackupCheckpointNoteFile),
                     manifest.checkpoint().note()));
  }
  std::string text;
  google::protobuf::TextFormat::PrintToString(manifest, &text);
  IBSM_RETURN_IF_ERROR(
      WriteNewFile(absl::StrCat(dir_, "/", kBackupManifestFile),
                   absl::StrCat("# ibsm-broker backup (docs/operations.md, "
                                "\"Backup and restore\")\n",
                                text)));
  return SyncDirectory(dir_);
}

absl::StatusOr<v1::BackupManifest> ReadBackupManifest(const std::string& dir) {
  const std::string path = absl::StrCat(dir, "/", kBackupManifestFile);
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir, " has no ", kBackupManifestFile,
        ": it is not a backup, or an incomplete one (the manifest is "
        "written last)"));
  }
  IBSM_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  v1::BackupManifest manifest;
  if (!google::protobuf::TextFormat::ParseFromString(text, &manifest)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " cannot be parsed as a backup manifest"));
  }
  if (manifest.format() != kBackupFormat) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is of backup format ", manifest.format(),
                     "; this broker reads format ", kBackupFormat));
  }
  return manifest;
}

namespace {

// Copies the backup's files into the empty `target.path`, fsyncs them, and
// checks that the opened copy holds what the manifest says.
absl::Status CopyAndCheck(const std::string& backup_dir,
                          const v1::BackupManifest& manifest,
                          const StoreOptions& target) {
  for (const v1::BackupFile& file : manifest.files()) {
    const std::string to = absl::StrCat(target.path, "/", file.name());
    std::error_code ec;
    fs::copy_file(absl::StrCat(backup_dir, "/", file.name()), to, ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot copy ", file.name(), " into ", target.path, ": ",
                       ec.message()));
    }
    fs::permissions(to, fs::perms::owner_read | fs::perms::owner_write, ec);
    int fd = ::open(to.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoError("open", to);
    const bool synced = ::fsync(fd) == 0;
    ::close(fd);
    if (!synced) return ErrnoError("sync", to);
  }
  IBSM_RETURN_IF_ERROR(SyncDirectory(target.path));
  v1::BackupManifest opened;
  {
    IBSM_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(target));
    IBSM_RETURN_IF_ERROR(ReadCopyState(*store, &opened));
    IBSM_RETURN_IF_ERROR(store->Flush());
  }
  if (opened.audit_size() != manifest.audit_size() ||
      opened.last_sequence() != manifest.last_sequence() ||
      opened.checkpoint().tree_size() != manifest.checkpoint().tree_size() ||
      opened.checkpoint().root_hash() != manifest.checkpoint().root_hash()) {
    return absl::DataLossError(absl::StrCat(
        "the restored data directory ", target.path, " holds ",
        opened.audit_size(), " audit records and alerts up to sequence ",
        opened.last_sequence(), ", but the manifest says ",
        manifest.audit_size(), " and ", manifest.last_sequence(),
        ": use another backup"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RestoreReport> RestoreBackup(
    const std::string& backup_dir, const StoreOptions& target,
    const std::string& published_checkpoint_file) {
  RestoreReport report;
  IBSM_ASSIGN_OR_RETURN(report.backup, ReadBackupManifest(backup_dir));
  const v1::BackupManifest& manifest = report.backup;
  if (manifest.node_id() != target.node_id) {
    return absl::FailedPreconditionError(
        absl::StrCat("the backup in ", backup_dir, " is of node ",
                     manifest.node_id(), ", not ", target.node_id));
  }
  for (const v1::BackupFile& file : manifest.files()) {
    if (!PlainFileName(file.name())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the manifest in ", backup_dir, " names a file '",
          absl::CHexEscape(file.name()), "' that is not a plain file name"));
    }
    IBSM_ASSIGN_OR_RETURN(auto hashed,
                          HashFile(absl::StrCat(backup_dir, "/", file.name())));
    if (hashed.second != file.size() || hashed.first != file.sha256()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "file ", file.name(), " of the backup in ", backup_dir,
          " does not match its manifest (", hashed.second, " bytes, ",
          file.size(), " listed, or another SHA-256): the backup is damaged"));
    }
  }
  IBSM_ASSIGN_OR_RETURN(
      report.published,
      ReadPublishedCheckpoint(published_checkpoint_file, target.node_id));
  IBSM_RETURN_IF_ERROR(RequireEmptyOrAbsent(target.path, "data directory"));
  absl::Status copied = CopyAndCheck(backup_dir, manifest, target);
  if (!copied.ok()) {
    // The directory was absent or empty: a failed restore leaves it empty,
    // never half a database that could be started.
    std::error_code ec;
    for (const fs::directory_entry& entry :
         fs::directory_iterator(target.path, ec)) {
      fs::remove_all(entry.path(), ec);
    }
    return absl::Status(copied.code(),
                        absl::StrCat(copied.message(), " (", target.path,
                                     " was emptied again)"));
  }
  return report;
}

std::string DescribeRestore(const RestoreReport& report,
                            const std::string& config_path) {
  const v1::BackupManifest& b = report.backup;
  uint64_t bytes = 0;
  for (const v1::BackupFile& file : b.files()) bytes += file.size();
  std::string text = absl::StrCat(
      "restored the backup of node ", b.node_id(), " taken at ",
      google::protobuf::util::TimeUtil::ToString(b.created_at()), " (",
      b.files_size(), " files, ", Mib(bytes), "): alerts up to sequence ",
      b.last_sequence(), ", an audit trail of ", b.audit_size(), " records",
      b.has_checkpoint() ? absl::StrCat(", its latest signed checkpoint at ",
                                        b.checkpoint().tree_size(), " records")
                         : std::string(", no signed checkpoint yet"),
      ".\n");
  if (!report.published) {
    absl::StrAppend(
        &text,
        "No record of a newer checkpoint signed by this node was found (the "
        "published checkpoint file is missing), so nothing tells how much "
        "happened after the backup: ask the auditors for the newest "
        "checkpoint of ",
        b.node_id(), " they hold before you start it.\n");
    return text;
  }
  const internal::v1::PublishedCheckpoint& p = *report.published;
  const uint64_t signed_size = p.checkpoint().tree_size();
  if (signed_size <= b.audit_size()) {
    absl::StrAppend(&text,
                    "The node had signed no checkpoint beyond this backup "
                    "(newest: ",
                    signed_size,
                    " records): it starts normally; audit records written "
                    "after the backup and never covered by a checkpoint are "
                    "gone.\n");
    return text;
  }
  absl::StrAppend(&text, "This node had already signed a checkpoint of ",
                  signed_size,
                  " audit records, when it had stored alerts up to sequence ",
                  p.last_sequence(), ".\n");
  if (p.last_sequence() > b.last_sequence()) {
    absl::StrAppend(
        &text, "- Alerts with sequences ", b.last_sequence() + 1, " to ",
        p.last_sequence(),
        " (at least) were acknowledged after the backup was taken and are "
        "gone from this node. Peers the policy forwarded them to may still "
        "hold copies; publishers that keep what they sent can publish them "
        "again with the same alert ids (this node no longer knows them, so "
        "they are stored anew). New alerts will reuse those sequence "
        "numbers: identify alerts by originator and id, not by sequence.\n");
  }
  absl::StrAppend(
      &text,
      "- Durable subscribers resume from the cursor the backup holds, so "
      "they receive again what they acknowledged after it was taken.\n",
      "- The node will refuse to start (exit 2) on this shorter trail: "
      "auditors may hold the checkpoint of ",
      signed_size,
      " records, and the node would sign a second, different history at "
      "those sizes. Tell the auditors, then start it once with\n"
      "    ibsm-broker --config ",
      config_path, " --accept-rollback ", signed_size,
      "\n  which records the rollback in the audit trail "
      "(AUDIT_ROLLBACK_ACCEPTED) and keeps the abandoned checkpoint next to "
      "the published checkpoint file.\n");
  return text;
}

}  // namespace ibsm::broker
