// shim_policy.h: the admin's unisock policy, read from the driver's config file
// (docs/INTEGRATION.md, step "The admin's policy"), and the host paths the master's
// valid_socket is shown (as the library resolves them).
//
// The config file is the admin's: mudlib code cannot write it, and it already
// holds the external_cmd_N lines. The driver keeps its lines to itself (and
// ignores those it does not know), so the shim reads the file again: its path
// and text are captured when the process starts (before the driver changes into
// the mudlib directory), and the policy is built from them the first time the
// sockets package is used, when the driver's own settings (the mudlib
// directory, external_cmd_N) are known.
//
// Lines, each `unisock <key> : <values>` (values separated by blanks; a key
// given on several lines collects them all):
//
//   unisock modes : 10 11 12 13 22 23         numbers or names (EXTERNAL_PROCESS)
//   unisock commands : /usr/bin/python3 /usr/local/mud/bin/
//   unisock shell : 0                         0 or 1 (open too)
//   unisock users : mudhelper                 names or numeric ids (groups too)
//   unisock watch_dirs : /srv/mud/incoming    socket_dirs, tls_dirs, ... alike
//   unisock policy_file : /etc/fluffos/unisock-policy.json
//
// Without a policy_file every key no line names keeps the driver's default:
// modes 10 11 12 13 16 17 18 19 and tls_dirs the mudlib directory, nothing else. A
// policy_file is the whole policy in unisock's JSON form (a key it leaves out
// allows nothing); lines given beside it replace its keys. The external_cmd_N
// commands are always added to "commands". Any problem is logged, naming the
// line, and the default policy is put in force instead.

#ifndef UNISOCK_SHIM_POLICY_H
#define UNISOCK_SHIM_POLICY_H

#include <string>
#include <vector>

namespace unisock_shim {

// What the shim knows about the driver's config once the driver has read it.
struct DriverConfig {
  std::string path;          // the config file (absolute), "" when not found
  std::string text;          // its text as read at process start
  std::string read_error;    // why it could not be read ("" when it was)
  std::string mudlib_dir;    // "mudlib directory" as the driver holds it
  std::string mudlib_host;   // the mudlib directory as an absolute host path
  // external_cmd_1 .. external_cmd_N as the driver holds them ("" for none).
  std::vector<std::string> external_cmds;
};

// The config file of a command line given as /proc/self/cmdline has it
// (arguments separated by NUL bytes): the first argument after the program
// that does not start with '-' (as the driver takes it), made absolute from
// `cwd`. "" when there is none.
std::string config_path_from_cmdline(const std::string& cmdline, const std::string& cwd);

// Reads at most `max` bytes of a regular file (never a FIFO or device, never
// blocking). False with the reason in *err otherwise.
bool read_small_file(const std::string& path, size_t max, std::string* text, std::string* err);

// The path and text of the driver's config file, read from this process's
// command line and working directory (for a static constructor: before
// main, while the working directory is still the one the driver was started in).
DriverConfig capture_driver_config();

// One line of the config as the driver keeps it: everything from '#' on
// removed, blanks trimmed; `number` counts the file's lines from 1.
struct ConfigLine {
  int number;
  std::string text;
};

// The lines the driver reads (empty ones dropped). The driver stops reading
// at a line of 120 characters or more (its '\r' counted), without reading
// that line either; so does this, and *stopped_at (if given) is that line's
// number, else 0.
std::vector<ConfigLine> config_lines(const std::string& text, int* stopped_at = nullptr);

// Reads `key : value` from a line the way the driver's
// sscanf("<key> : %[^\n]") does (a blank matches any run of blanks, even none).
bool scan_config_value(const std::string& line, const std::string& key, std::string* value);

// The policy the config asks for, as unisock_set_policy takes it.
struct ConfigPolicy {
  std::string json;                 // the policy asked for ("" when errors)
  std::string fallback;             // the default policy (modes 10-13, tls_dirs the mudlib)
  std::vector<std::string> errors;  // one log line per problem
  std::vector<std::string> notes;   // log lines that change nothing
  int lines = 0;                    // unisock lines read
  std::string policy_file;          // the policy_file named ("" when none)
  // The line numbers that named each key (to name them in unisock's refusal).
  std::vector<std::pair<std::string, std::vector<int>>> key_lines;
};

// Builds the policy of a config (no unisock call changes anything in force).
ConfigPolicy policy_from_config(const DriverConfig& cfg);

// Puts the config's policy in force, or the default one when it has an
// error or unisock refuses it (the message names the key; the lines that
// named it are added). Returns the lines for the driver's log: problems and
// notes first, then one "unisock: policy in force (...): {json}".
std::vector<std::string> apply_config_policy(const DriverConfig& cfg);

// The policy in force (unisock_get_policy) as one line of JSON.
std::string policy_in_force();

// `path` as unisock's policy judges it (unisock_resolve_path, the library's
// own resolution, so that the master is shown what the policy checks):
// absolute (relative paths from the working directory), symlinks, `.` and
// `..` resolved; with `may_be_new` a missing last component appended to its
// resolved directory; a path that does not resolve yet where the policy
// places it (`.` and `..` taken lexically); as given when it is no path
// (empty, a NUL byte, not UTF-8), which unisock refuses by name.
std::string policy_path(const std::string& path, bool may_be_new);

}  // namespace unisock_shim

#endif  // UNISOCK_SHIM_POLICY_H
