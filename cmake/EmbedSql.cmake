# cmake -DSCHEMA=... -DSEED=... -DMIGRATIONS_DIR=... -DOUTPUT=... -P EmbedSql.cmake
# Writes a C++ source holding the profile database's SQL verbatim (no variable substitution): the
# schema, the seed, and each migration file NNNN_name.sql, which brings user_version to NNNN.
file(READ "${SCHEMA}" schema)
file(READ "${SEED}" seed)
file(GLOB migrations "${MIGRATIONS_DIR}/*.sql")
list(SORT migrations)
set(delimiter "squeeze_sql")
set(cases "")
set(all "${schema}${seed}")
foreach(path IN LISTS migrations)
  get_filename_component(name "${path}" NAME)
  if(NOT name MATCHES "^([0-9][0-9][0-9][0-9])_[a-z0-9_]+\\.sql$")
    message(FATAL_ERROR "migration ${name}: expected NNNN_name.sql")
  endif()
  math(EXPR version "${CMAKE_MATCH_1}")
  file(READ "${path}" sql)
  string(APPEND all "${sql}")
  string(APPEND cases "    case ${version}: {  // ${name}\n"
                      "      static constexpr char kSql[] = R\"${delimiter}(${sql})${delimiter}\";\n"
                      "      return kSql;\n    }\n")
endforeach()
string(FIND "${all}" ")${delimiter}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "the SQL contains the raw-string delimiter )${delimiter}\"")
endif()
file(WRITE "${OUTPUT}.tmp"
"// Generated from device_profiles/schema.sql, seed.sql and migrations/ by cmake/EmbedSql.cmake:\n"
"// the profile database's SQL, shipped in the binary so squeezed needs no source tree at run time.\n"
"#include \"device_profiles/profile_store.h\"\n\n"
"namespace squeeze::device_profiles {\n\n"
"absl::string_view ProfileSchemaSql() {\n"
"  static constexpr char kSql[] = R\"${delimiter}(${schema})${delimiter}\";\n"
"  return kSql;\n}\n\n"
"absl::string_view ProfileSeedSql() {\n"
"  static constexpr char kSql[] = R\"${delimiter}(${seed})${delimiter}\";\n"
"  return kSql;\n}\n\n"
"absl::string_view ProfileMigrationSql(int to_version) {\n"
"  switch (to_version) {\n${cases}"
"    default: return {};\n  }\n}\n\n"
"}  // namespace squeeze::device_profiles\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
