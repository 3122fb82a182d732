// Node addon with one function, lowMemoryNotification(), that calls V8's
// Isolate::LowMemoryNotification(). V8 then runs full collections that reduce memory, as
// its memory reducer does after a few seconds without load: unlike a plain full collection, they
// also shrink the young generation and give its pages back to the system. Node offers no
// JavaScript function for this, and Node-API none either, so this addon uses V8's C++ API and
// must be built with the headers of the Node version that loads it.
#include <node.h>

namespace {

void LowMemoryNotification(const v8::FunctionCallbackInfo<v8::Value>& info) {
  info.GetIsolate()->LowMemoryNotification();
}

}  // namespace

NODE_MODULE_INIT() {
  (void)module;
  (void)context;
  NODE_SET_METHOD(exports, "lowMemoryNotification", LowMemoryNotification);
}
