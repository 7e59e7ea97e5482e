# cmake -DPREFIX=Name -DNAMESPACE=ns -DHEADER=path.h -DMIGRATIONS_DIR=... [-DSCHEMA=... -DSEED=...]
#       -DOUTPUT=... -P EmbedSql.cmake
# Writes a C++ source holding a database's SQL verbatim (no variable substitution), so the binary
# needs no source tree at run time: <PREFIX>MigrationSql(to_version) returns the migration file
# NNNN_name.sql that brings user_version to NNNN (empty for any other version); with SCHEMA and
# SEED also <PREFIX>SchemaSql(), <PREFIX>SeedSql() and <PREFIX>SeedMigrations(), the versions of the
# migrations named NNNN_seed_*.sql (rows the seed gained since schema.sql's first version, which a
# new database runs after seed.sql).
foreach(required PREFIX NAMESPACE HEADER MIGRATIONS_DIR OUTPUT)
  if(NOT DEFINED ${required})
    message(FATAL_ERROR "EmbedSql.cmake needs -D${required}=...")
  endif()
endforeach()
set(delimiter "squeeze_sql")
set(all "")
set(extra "")
if(DEFINED SCHEMA)
  file(READ "${SCHEMA}" schema)
  file(READ "${SEED}" seed)
  string(APPEND all "${schema}${seed}")
  string(APPEND extra
    "absl::string_view ${PREFIX}SchemaSql() {\n"
    "  static constexpr char kSql[] = R\"${delimiter}(${schema})${delimiter}\";\n"
    "  return kSql;\n}\n\n"
    "absl::string_view ${PREFIX}SeedSql() {\n"
    "  static constexpr char kSql[] = R\"${delimiter}(${seed})${delimiter}\";\n"
    "  return kSql;\n}\n\n")
endif()
file(GLOB migrations "${MIGRATIONS_DIR}/*.sql")
list(SORT migrations)
set(cases "")
set(seed_versions "")
set(expected 1)
foreach(path IN LISTS migrations)
  get_filename_component(name "${path}" NAME)
  if(NOT name MATCHES "^([0-9][0-9][0-9][0-9])_[a-z0-9_]+\\.sql$")
    message(FATAL_ERROR "migration ${name}: expected NNNN_name.sql")
  endif()
  math(EXPR version "${CMAKE_MATCH_1}")
  if(name MATCHES "^[0-9][0-9][0-9][0-9]_seed_")
    string(APPEND seed_versions "${version}, ")
  endif()
  file(READ "${path}" sql)
  string(APPEND all "${sql}")
  string(APPEND cases "    case ${version}: {  // ${name}\n"
                      "      static constexpr char kSql[] = R\"${delimiter}(${sql})${delimiter}\";\n"
                      "      return kSql;\n    }\n")
endforeach()
set(seed_function "")
if(DEFINED SCHEMA)
  set(seed_function "std::vector<int> ${PREFIX}SeedMigrations() { return {${seed_versions}}; }\n\n")
endif()
string(FIND "${all}" ")${delimiter}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "the SQL contains the raw-string delimiter )${delimiter}\"")
endif()
file(WRITE "${OUTPUT}.tmp"
"// Generated from ${MIGRATIONS_DIR} by cmake/EmbedSql.cmake: the database's SQL, shipped in the\n"
"// binary so it needs no source tree at run time.\n"
"#include \"${HEADER}\"\n\n"
"namespace ${NAMESPACE} {\n\n"
"${extra}"
"${seed_function}"
"absl::string_view ${PREFIX}MigrationSql(int to_version) {\n"
"  switch (to_version) {\n${cases}"
"    default: return {};\n  }\n}\n\n"
"}  // namespace ${NAMESPACE}\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
