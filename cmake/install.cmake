# Installing naq like a C library: `cmake --install build [--prefix DIR]`
# puts libnaq.so (SONAME libnaq.so.<major>) and libnaq.a in lib/, the
# public headers in include/naq/, naq.pc in lib/pkgconfig/, the naq binary
# in bin/, the man page naq(1) and the documentation in share/.
include(GNUInstallDirs)

# The shared library: the same objects as libnaq.a, exporting only the
# public API (cmake/libnaq.map). The SONAME changes with the major version:
# bump it when a public signature or struct changes incompatibly.
add_library(naq_shared SHARED $<TARGET_OBJECTS:naq_objects>)
set_target_properties(naq_shared PROPERTIES
  OUTPUT_NAME naq
  VERSION ${PROJECT_VERSION}
  SOVERSION ${PROJECT_VERSION_MAJOR}
  LINK_DEPENDS ${CMAKE_SOURCE_DIR}/cmake/libnaq.map)
target_link_options(naq_shared PRIVATE
  -Wl,--version-script=${CMAKE_SOURCE_DIR}/cmake/libnaq.map -Wl,--no-undefined)
target_link_libraries(naq_shared PRIVATE PkgConfig::NATS PkgConfig::JANSSON PkgConfig::OPENSSL PkgConfig::MHD PkgConfig::CURL PkgConfig::SODIUM Threads::Threads m)

install(TARGETS naq naq_shared
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/naq DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h")
if(TARGET naq_cli)
  # `naq --version` tells the same version as the library and the package.
  target_compile_definitions(naq_cli PRIVATE NAQ_VERSION="${PROJECT_VERSION}")
  install(TARGETS naq_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

# naq.pc finds the prefix from its own place, so it is right for any
# --prefix given at install time, not only CMAKE_INSTALL_PREFIX.
file(RELATIVE_PATH NAQ_PC_PREFIX_REL
  ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" NAQ_PC_PREFIX_REL "${NAQ_PC_PREFIX_REL}")
configure_file(${CMAKE_SOURCE_DIR}/cmake/naq.pc.in ${CMAKE_BINARY_DIR}/naq.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/naq.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# naq(1) is generated from `naq --help` and every command's --help, so it
# cannot drift from them (scripts/gen-man.sh; tests/test_install.sh checks it).
if(TARGET naq_cli)
  add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/naq.1
    COMMAND ${CMAKE_SOURCE_DIR}/scripts/gen-man.sh $<TARGET_FILE:naq_cli>
            ${CMAKE_SOURCE_DIR}/man/naq.1.in ${PROJECT_VERSION} > ${CMAKE_BINARY_DIR}/naq.1.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${CMAKE_BINARY_DIR}/naq.1.tmp ${CMAKE_BINARY_DIR}/naq.1
    DEPENDS naq_cli ${CMAKE_SOURCE_DIR}/scripts/gen-man.sh ${CMAKE_SOURCE_DIR}/man/naq.1.in
    COMMENT "Generating naq(1) from naq --help")
  add_custom_target(naq_man ALL DEPENDS ${CMAKE_BINARY_DIR}/naq.1)
  install(FILES ${CMAKE_BINARY_DIR}/naq.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endif()

install(FILES ${CMAKE_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}
  FILES_MATCHING PATTERN "*.md")
