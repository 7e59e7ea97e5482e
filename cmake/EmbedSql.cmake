# cmake -DSCHEMA=... -DSEED=... -DOUTPUT=... -P EmbedSql.cmake
# Writes a C++ source holding the profile database's SQL verbatim (no variable substitution).
file(READ "${SCHEMA}" schema)
file(READ "${SEED}" seed)
set(delimiter "squeeze_sql")
string(FIND "${schema}${seed}" ")${delimiter}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "the SQL contains the raw-string delimiter )${delimiter}\"")
endif()
file(WRITE "${OUTPUT}.tmp"
"// Generated from device_profiles/schema.sql and seed.sql by cmake/EmbedSql.cmake: the profile\n"
"// database's SQL, shipped in the binary so squeezed needs no source tree at run time.\n"
"#include \"device_profiles/profile_store.h\"\n\n"
"namespace squeeze::device_profiles {\n\n"
"absl::string_view ProfileSchemaSql() {\n"
"  static constexpr char kSql[] = R\"${delimiter}(${schema})${delimiter}\";\n"
"  return kSql;\n}\n\n"
"absl::string_view ProfileSeedSql() {\n"
"  static constexpr char kSql[] = R\"${delimiter}(${seed})${delimiter}\";\n"
"  return kSql;\n}\n\n"
"}  // namespace squeeze::device_profiles\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
