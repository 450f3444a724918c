#include "csi/call_logger.h"

#include <chrono>
#include <string>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <spdlog/spdlog.h>

namespace cellar::csi {

namespace {

using grpc::experimental::InterceptionHookPoints;

// Which request field names the object of the call, in order of preference.
std::string Subject(const google::protobuf::Message& msg) {
  const auto* desc = msg.GetDescriptor();
  const auto* refl = msg.GetReflection();
  for (const char* name : {"volume_id", "name"}) {
    const auto* field = desc->FindFieldByName(name);
    if (field && field->type() == google::protobuf::FieldDescriptor::TYPE_STRING &&
        !field->is_repeated()) {
      std::string value = refl->GetString(msg, field);
      if (!value.empty()) {
        if (const auto* target = desc->FindFieldByName("target_path")) {
          std::string path = refl->GetString(msg, target);
          if (!path.empty()) return value + " " + path;
        }
        return value;
      }
    }
  }
  return "-";
}

bool IsQuiet(const std::string& method) {
  return method.ends_with("/Probe") || method.ends_with("/GetPluginInfo") ||
         method.ends_with("Capabilities") || method.ends_with("/NodeGetVolumeStats") ||
         method.ends_with("/GetStatus");
}

class CallLogger final : public grpc::experimental::Interceptor {
 public:
  explicit CallLogger(grpc::experimental::ServerRpcInfo* info)
      : method_(info->method()), start_(std::chrono::steady_clock::now()) {
    auto slash = method_.rfind('/');
    short_ = slash == std::string::npos ? method_ : method_.substr(slash + 1);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      // Every Cellar service speaks protobuf, so the received message is one.
      if (auto* msg = static_cast<google::protobuf::Message*>(methods->GetRecvMessage())) {
        subject_ = Subject(*msg);
      }
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status status = methods->GetSendStatus();
      double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_)
              .count();
      if (!status.ok()) {
        spdlog::warn("{} {} -> code {} \"{}\" ({:.1f} ms)", short_, subject_,
                     static_cast<int>(status.error_code()), status.error_message(), ms);
      } else if (IsQuiet(method_)) {
        spdlog::debug("{} {} -> OK ({:.1f} ms)", short_, subject_, ms);
      } else {
        spdlog::info("{} {} -> OK ({:.1f} ms)", short_, subject_, ms);
      }
    }
    methods->Proceed();
  }

 private:
  std::string method_;
  std::string short_;
  std::string subject_ = "-";
  std::chrono::steady_clock::time_point start_;
};

class CallLoggerFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new CallLogger(info);  // gRPC owns and deletes interceptors
  }
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeCallLoggerFactory() {
  return std::make_unique<CallLoggerFactory>();
}

}  // namespace cellar::csi
