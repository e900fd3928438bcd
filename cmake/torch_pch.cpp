// The one source of the dtune_torch_pch object library (cmake/TorchPch.cmake). CMake builds a
// precompiled header only for a target with a source file; the other libtorch targets reuse the
// header, and this file's own (empty) object is linked nowhere.
