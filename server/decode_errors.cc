#include "server/decode_errors.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "server/log_limit.h"

namespace quiver::server {
namespace {

using grpc::experimental::InterceptionHookPoints;

class DecodeErrorInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit DecodeErrorInterceptor(grpc::experimental::ServerRpcInfo* info)
      : method_(info->method() != nullptr ? info->method() : "") {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      // Whatever protobuf logged while parsing this request (same thread).
      std::string why = TakeThreadParseError();
      if (methods->GetRecvMessage() == nullptr) {
        undecodable_ = true;
        reason_ = why.empty() ? "its bytes are not that message (invalid UTF-8 in a string "
                                "field, or another encoding?)"
                              : std::move(why);
      }
    }
    if (undecodable_ &&
        methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status sent = methods->GetSendStatus();
      // The handler never ran: this is gRPC's empty UNIMPLEMENTED.
      if (sent.error_code() == grpc::StatusCode::UNIMPLEMENTED && sent.error_message().empty()) {
        methods->ModifySendStatus(grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT,
            absl::StrCat("request could not be decoded as the request message of ", method_,
                         ": ", reason_,
                         " (proto3 string fields must hold valid UTF-8)")));
      }
    }
    methods->Proceed();
  }

 private:
  const std::string method_;
  bool undecodable_ = false;
  std::string reason_;
};

}  // namespace

grpc::experimental::Interceptor* DecodeErrorInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new DecodeErrorInterceptor(info);
}

}  // namespace quiver::server
