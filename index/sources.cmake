# Sources of the index module (index/); included by the top-level build:
#
#   include(index/sources.cmake)
#   add_library(quiver_index STATIC ${QUIVER_INDEX_SOURCES})
#   target_include_directories(quiver_index PUBLIC ${CMAKE_SOURCE_DIR})
#   target_link_libraries(quiver_index PUBLIC faiss ${BLAS_LIBRARIES} OpenMP::OpenMP_CXX
#     absl::status absl::statusor absl::strings)
#
# It needs, before that (FAISS's config needs OpenMP found first; hnswlib is
# header-only, /usr/include/hnswlib from libhnswlib-dev, no package):
#
#   find_package(OpenMP REQUIRED)
#   find_package(faiss CONFIG REQUIRED)
#   set(BLA_VENDOR OpenBLAS)
#   find_package(BLAS REQUIRED)
#
# Only index/hnsw_index.cc includes <hnswlib/hnswlib.h> (wrapped so that its
# non-inline definitions get internal linkage); only the IVF kinds' .cc files
# (ivf_flat_index.cc, ivf_common.cc, ivf_sq8_index.cc, ivf_pq_index.cc) and
# hnsw_sq8_index.cc include FAISS headers.
#
# index/kernels.cc is not in the list: it is compiled twice, with
# -DQUIVER_KERNEL_NS=baseline and with -DQUIVER_KERNEL_NS=avx2
# -DQUIVER_KERNEL_WANT_AVX2 -mavx2 -mfma, and both objects are added (the
# top-level CMakeLists.txt, quiver_kernels_*).
set(QUIVER_INDEX_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/distance.cc
  ${CMAKE_CURRENT_LIST_DIR}/cpu_dispatch.cc
  ${CMAKE_CURRENT_LIST_DIR}/flat_search.cc
  ${CMAKE_CURRENT_LIST_DIR}/flat_index.cc
  ${CMAKE_CURRENT_LIST_DIR}/hnsw_index.cc
  ${CMAKE_CURRENT_LIST_DIR}/ivf_flat_index.cc
  ${CMAKE_CURRENT_LIST_DIR}/ivf_common.cc
  ${CMAKE_CURRENT_LIST_DIR}/sq8.cc
  ${CMAKE_CURRENT_LIST_DIR}/ivf_sq8_index.cc
  ${CMAKE_CURRENT_LIST_DIR}/ivf_pq_index.cc
  ${CMAKE_CURRENT_LIST_DIR}/hnsw_sq8_index.cc
  ${CMAKE_CURRENT_LIST_DIR}/registry.cc
  ${CMAKE_CURRENT_LIST_DIR}/maxsim.cc
  ${CMAKE_CURRENT_LIST_DIR}/muvera.cc
)
