#include "server/reflection_v1.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "base/truncate.h"

namespace quiver::server {
namespace {

namespace rv1 = grpc::reflection::v1;
using google::protobuf::DescriptorPool;
using google::protobuf::FileDescriptor;

void SetError(rv1::ServerReflectionResponse* resp, grpc::StatusCode code, std::string message) {
  auto* err = resp->mutable_error_response();
  err->set_error_code(static_cast<int32_t>(code));
  err->set_error_message(std::move(message));
}

// `file` and, depth first, every file it imports (each once), as gRPC's
// v1alpha answers.
void AddFileAndDeps(const FileDescriptor* file, absl::flat_hash_set<std::string>* sent,
                    rv1::FileDescriptorResponse* out) {
  if (!sent->insert(file->name()).second) return;
  google::protobuf::FileDescriptorProto proto;
  file->CopyTo(&proto);
  proto.SerializeToString(out->add_file_descriptor_proto());
  for (int i = 0; i < file->dependency_count(); ++i) AddFileAndDeps(file->dependency(i), sent, out);
}

const FileDescriptor* FileOfSymbol(const DescriptorPool& pool, const std::string& symbol) {
  if (const FileDescriptor* f = pool.FindFileContainingSymbol(symbol)) return f;
  // A method's full name ("pkg.Service.Method") is not a symbol of the pool.
  const size_t dot = symbol.rfind('.');
  if (dot == std::string::npos) return nullptr;
  const auto* service = pool.FindServiceByName(symbol.substr(0, dot));
  if (service == nullptr || service->FindMethodByName(symbol.substr(dot + 1)) == nullptr) {
    return nullptr;
  }
  return service->file();
}

void Answer(const std::vector<std::string>& services, const rv1::ServerReflectionRequest& req,
            rv1::ServerReflectionResponse* resp) {
  const DescriptorPool& pool = *DescriptorPool::generated_pool();
  absl::flat_hash_set<std::string> sent_set;
  absl::flat_hash_set<std::string>* sent = &sent_set;
  resp->set_valid_host(req.host());
  *resp->mutable_original_request() = req;
  switch (req.message_request_case()) {
    case rv1::ServerReflectionRequest::kListServices: {
      auto* list = resp->mutable_list_services_response();
      for (const std::string& s : services) list->add_service()->set_name(s);
      return;
    }
    case rv1::ServerReflectionRequest::kFileByFilename: {
      const FileDescriptor* f = pool.FindFileByName(req.file_by_filename());
      if (f == nullptr) {
        return SetError(resp, grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("file not found: ",
                                     TruncateForMessage(req.file_by_filename(), 200)));
      }
      return AddFileAndDeps(f, sent, resp->mutable_file_descriptor_response());
    }
    case rv1::ServerReflectionRequest::kFileContainingSymbol: {
      const FileDescriptor* f = FileOfSymbol(pool, req.file_containing_symbol());
      if (f == nullptr) {
        return SetError(resp, grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("symbol not found: ",
                                     TruncateForMessage(req.file_containing_symbol(), 200)));
      }
      return AddFileAndDeps(f, sent, resp->mutable_file_descriptor_response());
    }
    case rv1::ServerReflectionRequest::kFileContainingExtension: {
      const auto& ext = req.file_containing_extension();
      const auto* type = pool.FindMessageTypeByName(ext.containing_type());
      const auto* field =
          type == nullptr ? nullptr : pool.FindExtensionByNumber(type, ext.extension_number());
      if (field == nullptr) {
        return SetError(resp, grpc::StatusCode::NOT_FOUND, "extension not found");
      }
      return AddFileAndDeps(field->file(), sent, resp->mutable_file_descriptor_response());
    }
    case rv1::ServerReflectionRequest::kAllExtensionNumbersOfType: {
      const auto* type = pool.FindMessageTypeByName(req.all_extension_numbers_of_type());
      if (type == nullptr) {
        return SetError(resp, grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("type not found: ",
                                     TruncateForMessage(req.all_extension_numbers_of_type(), 200)));
      }
      std::vector<const google::protobuf::FieldDescriptor*> exts;
      pool.FindAllExtensions(type, &exts);
      auto* out = resp->mutable_all_extension_numbers_response();
      out->set_base_type_name(type->full_name());
      for (const auto* e : exts) out->add_extension_number(e->number());
      return;
    }
    case rv1::ServerReflectionRequest::MESSAGE_REQUEST_NOT_SET:
      break;
  }
  SetError(resp, grpc::StatusCode::INVALID_ARGUMENT, "the request asks for nothing");
}

}  // namespace

grpc::Status ReflectionV1Service::ServerReflectionInfo(
    grpc::ServerContext* /*ctx*/,
    grpc::ServerReaderWriter<rv1::ServerReflectionResponse, rv1::ServerReflectionRequest>*
        stream) {
  rv1::ServerReflectionRequest req;
  while (stream->Read(&req)) {
    rv1::ServerReflectionResponse resp;
    Answer(services_, req, &resp);
    if (!stream->Write(resp)) break;
  }
  return grpc::Status::OK;
}

}  // namespace quiver::server
