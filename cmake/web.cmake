# `naq web` (cli/web/): its C files join the naq binary, and its pages
# (cli/web/assets/: plain HTML, CSS and JS, no build step) become C arrays
# at build time (embed_assets.cmake), so the binary serves them offline.
file(GLOB NAQ_WEB_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/cli/web/*.c)
file(GLOB NAQ_WEB_ASSETS CONFIGURE_DEPENDS RELATIVE ${CMAKE_SOURCE_DIR}/cli/web/assets
  ${CMAKE_SOURCE_DIR}/cli/web/assets/*)
list(SORT NAQ_WEB_ASSETS)
set(NAQ_WEB_ASSET_PATHS ${NAQ_WEB_ASSETS})
list(TRANSFORM NAQ_WEB_ASSET_PATHS PREPEND ${CMAKE_SOURCE_DIR}/cli/web/assets/)
string(REPLACE ";" "," NAQ_WEB_ASSET_LIST "${NAQ_WEB_ASSETS}")
add_custom_command(
  OUTPUT ${CMAKE_BINARY_DIR}/web_assets.c
  COMMAND ${CMAKE_COMMAND} -DOUT=${CMAKE_BINARY_DIR}/web_assets.c
    -DDIR=${CMAKE_SOURCE_DIR}/cli/web/assets -DFILES=${NAQ_WEB_ASSET_LIST}
    -P ${CMAKE_SOURCE_DIR}/cmake/embed_assets.cmake
  DEPENDS ${NAQ_WEB_ASSET_PATHS} ${CMAKE_SOURCE_DIR}/cmake/embed_assets.cmake
  COMMENT "Embedding the web UI (cli/web/assets)"
  VERBATIM)
target_sources(naq_cli PRIVATE ${NAQ_WEB_SOURCES} ${CMAKE_BINARY_DIR}/web_assets.c)
target_include_directories(naq_cli PRIVATE ${CMAKE_SOURCE_DIR}/cli/web)
