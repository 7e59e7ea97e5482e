# Every external dependency, found once. All come from Debian 12's packages except ONNX Runtime,
# which deploy/install-deps.sh unpacks into .cache/onnxruntime (or ONNXRUNTIME_ROOT points at an
# official release).

find_package(Threads REQUIRED)
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
find_package(absl CONFIG REQUIRED)
find_package(TBB CONFIG REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(ONNX CONFIG REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(fmt CONFIG REQUIRED)
find_package(Catch2 2 REQUIRED)
find_package(benchmark CONFIG REQUIRED)
find_package(Eigen3 3.3 REQUIRED NO_MODULE)

find_program(GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)

set(ONNXRUNTIME_ROOT "$ENV{ONNXRUNTIME_ROOT}" CACHE PATH "ONNX Runtime release (include/, lib/)")
if(NOT ONNXRUNTIME_ROOT)
  set(ONNXRUNTIME_ROOT "${PROJECT_SOURCE_DIR}/.cache/onnxruntime" CACHE PATH "" FORCE)
endif()
find_path(ONNXRUNTIME_INCLUDE_DIR onnxruntime_cxx_api.h
  PATHS "${ONNXRUNTIME_ROOT}/include" "${ONNXRUNTIME_ROOT}/include/onnxruntime"
  NO_DEFAULT_PATH)
find_library(ONNXRUNTIME_LIBRARY onnxruntime PATHS "${ONNXRUNTIME_ROOT}/lib" NO_DEFAULT_PATH)
if(NOT ONNXRUNTIME_INCLUDE_DIR OR NOT ONNXRUNTIME_LIBRARY)
  message(FATAL_ERROR
    "ONNX Runtime not found under ${ONNXRUNTIME_ROOT}. Run deploy/install-deps.sh (or 'make deps'), "
    "or set ONNXRUNTIME_ROOT to an official ONNX Runtime release.")
endif()
add_library(onnxruntime::onnxruntime SHARED IMPORTED)
set_target_properties(onnxruntime::onnxruntime PROPERTIES
  IMPORTED_LOCATION "${ONNXRUNTIME_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${ONNXRUNTIME_INCLUDE_DIR}")
# Binaries find the library where it was built against, wherever the build tree is.
get_filename_component(ONNXRUNTIME_LIBRARY_DIR "${ONNXRUNTIME_LIBRARY}" DIRECTORY)
set(CMAKE_BUILD_RPATH "${ONNXRUNTIME_LIBRARY_DIR}")
set(CMAKE_INSTALL_RPATH "${ONNXRUNTIME_LIBRARY_DIR}")
