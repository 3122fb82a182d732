// Addon with one function, setSessionTickets(external, count): sets how many TLS 1.3 session
// tickets OpenSSL sends after each full handshake on the SSL_CTX behind a Node SecureContext, and
// returns the count it had before. OpenSSL sends two by default; each costs a key derivation, an
// encryption of the session and a record write.
//
// Node gives the SSL_CTX pointer as a V8 External (`secureContext.context._external`). Node-API
// cannot read an External that Node-API did not create, so this addon uses V8's API and is built
// for the Node it runs under. The OpenSSL functions resolve to the ones in the node binary.
#include <node.h>
#include <openssl/ssl.h>

namespace {

// Larger counts only cost more per handshake; OpenSSL itself accepts any size_t.
constexpr uint32_t kMaxTickets = 16;

void SetSessionTickets(const v8::FunctionCallbackInfo<v8::Value>& args) {
  v8::Isolate* isolate = args.GetIsolate();
  if (args.Length() != 2 || !args[0]->IsExternal() || !args[1]->IsUint32() ||
      args[1].As<v8::Uint32>()->Value() > kMaxTickets) {
    isolate->ThrowException(v8::Exception::TypeError(v8::String::NewFromUtf8Literal(
        isolate, "setSessionTickets(external, count): the SSL_CTX External and 0 to 16")));
    return;
  }
  auto* context = static_cast<SSL_CTX*>(args[0].As<v8::External>()->Value());
  if (context == nullptr) {
    isolate->ThrowException(v8::Exception::TypeError(
        v8::String::NewFromUtf8Literal(isolate, "setSessionTickets: the External is empty")));
    return;
  }
  size_t before = SSL_CTX_get_num_tickets(context);
  SSL_CTX_set_num_tickets(context, args[1].As<v8::Uint32>()->Value());
  args.GetReturnValue().Set(static_cast<double>(before));
}

}  // namespace

NODE_MODULE_INIT() {
  (void)module;
  (void)context;
  NODE_SET_METHOD(exports, "setSessionTickets", SetSessionTickets);
}
