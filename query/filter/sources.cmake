# Sources of the attribute filter language (query/filter/); included by the
# top-level build, which supplies include paths and links absl and protobuf.
set(QUIVER_FILTER_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/lexer.cc
  ${CMAKE_CURRENT_LIST_DIR}/ast.cc
  ${CMAKE_CURRENT_LIST_DIR}/parser.cc
  ${CMAKE_CURRENT_LIST_DIR}/filter.cc
  ${CMAKE_CURRENT_LIST_DIR}/eval.cc
)
