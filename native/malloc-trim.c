// Node-API addon with one function, trim(), that calls glibc's malloc_trim(0). glibc returns free
// memory to the system on its own only from the top of each heap, so pages freed in the middle of
// a heap after a load stay resident until malloc_trim releases them.
#include <malloc.h>
#include <node_api.h>

static napi_value trim(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value released;
  // malloc_trim returns 1 when it gave memory back to the system, 0 when there was none to give.
  if (napi_get_boolean(env, malloc_trim(0) == 1, &released) != napi_ok) return NULL;
  return released;
}

NAPI_MODULE_INIT() {
  napi_value function;
  if (napi_create_function(env, "trim", NAPI_AUTO_LENGTH, trim, NULL, &function) != napi_ok) {
    return NULL;
  }
  if (napi_set_named_property(env, exports, "trim", function) != napi_ok) return NULL;
  return exports;
}
