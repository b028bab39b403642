// shim_policy.cc: the admin's policy from the driver's config file (shim_policy.h).

#include "shim_policy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <utility>

#include "shim_values.h"
#include "unisock.h"

namespace unisock_shim {

namespace {

// The driver reads its config with getline into a buffer of 120 bytes
// (base/internal/rc.cc): a line of 119 characters or fewer is read whole; at
// a longer one getline fails, so that line and all after it are not read.
constexpr size_t kMaxConfigLine = 119;
// Largest config or policy file read.
constexpr size_t kMaxFile = 1 << 20;
// The keys that take 0 or 1, and those whose entries may be numbers.
bool is_flag(const std::string& k) { return k == "shell" || k == "open"; }
bool takes_numbers(const std::string& k) { return k == "modes" || k == "users" || k == "groups"; }

bool blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && blank(s[a])) a++;
  while (b > a && blank(s[b - 1])) b--;
  return s.substr(a, b - a);
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return s;
}

std::vector<std::string> words(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && blank(s[i])) i++;
    size_t j = i;
    while (j < s.size() && !blank(s[j])) j++;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() <= 18 && s.find_first_not_of("0123456789") == std::string::npos;
}

// A C string in double quotes, as the log lines quote what the admin wrote.
std::string quoted(const std::string& s) { return "\"" + s + "\""; }

UValue v_int(int64_t n) {
  unisock_value* v = nullptr;
  unisock_value_new_int(n, &v);
  return UValue(v);
}

UValue v_str(const std::string& s) {
  unisock_value* v = nullptr;
  if (unisock_value_new_string(s.data(), s.size(), &v) != UNISOCK_RESULT_OK) {
    // Not UTF-8: a buffer, which unisock refuses by the key's name.
    unisock_value_new_buffer(reinterpret_cast<const uint8_t*>(s.data()), s.size(), &v);
  }
  return UValue(v);
}

UValue v_arr() {
  unisock_value* v = nullptr;
  unisock_value_new_array(&v);
  return UValue(v);
}

void push(const UValue& arr, UValue item) { unisock_value_array_push(arr.get(), item.release()); }

std::string json_of(const unisock_value* v) {
  char* s = nullptr;
  if (unisock_value_to_json(v, &s) != UNISOCK_RESULT_OK || !s) return "?";
  std::string out(s);
  unisock_string_free(s);
  return out;
}

std::string text_of(const unisock_value* v) {
  const uint8_t* p = nullptr;
  size_t n = 0;
  if (unisock_value_bytes(v, &p, &n) != UNISOCK_RESULT_OK) return std::string();
  return std::string(reinterpret_cast<const char*>(p), n);
}

using Keys = std::map<std::string, UValue>;

std::string json_of_keys(const Keys& keys) {
  unisock_value* m = nullptr;
  unisock_value_new_mapping(&m);
  UValue map(m);
  for (const auto& kv : keys) {
    unisock_value* copy = nullptr;
    if (unisock_value_clone(kv.second.get(), &copy) != UNISOCK_RESULT_OK) continue;
    unisock_value_mapping_push(map.get(), v_str(kv.first).release(), copy);
  }
  return json_of(map.get());
}

bool has_dot_component(const std::string& p) {
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    std::string c = p.substr(i, j - i);
    if (c == "." || c == "..") return true;
    i = j + 1;
  }
  return false;
}

// The external_cmd_N commands as policy entries: relative ones are taken from
// the mudlib directory (the driver starts them from there), existing ones
// resolved; one with "." or ".." that does not exist is left out with a note.
std::vector<std::string> external_commands(const DriverConfig& cfg,
                                           std::vector<std::string>* notes) {
  std::vector<std::string> out;
  for (size_t i = 0; i < cfg.external_cmds.size(); i++) {
    const std::string& c = cfg.external_cmds[i];
    if (c.empty()) continue;
    std::string p = c[0] == '/' ? c : cfg.mudlib_host + "/" + c;
    char* real = realpath(p.c_str(), nullptr);
    if (real) {
      p = real;
      free(real);
    } else if (has_dot_component(p)) {
      notes->push_back("unisock: external_cmd_" + std::to_string(i + 1) + " " + quoted(c) +
                       " does not exist and has a \".\" or \"..\" in it: it is not added to the "
                       "policy's \"commands\"");
      continue;
    }
    bool seen = false;
    for (const auto& o : out) seen = seen || o == p;
    if (!seen) out.push_back(p);
  }
  return out;
}

// Adds the commands to keys["commands"] (made when missing; left alone when it
// is not a list, which unisock then refuses by name).
void add_commands(Keys* keys, const std::vector<std::string>& cmds) {
  auto it = keys->find("commands");
  if (it == keys->end()) it = keys->emplace("commands", v_arr()).first;
  unisock_value* arr = it->second.get();
  if (unisock_value_get_kind(arr) != UNISOCK_VALUE_KIND_ARRAY) return;
  for (const auto& c : cmds) {
    size_t n = 0;
    unisock_value_len(arr, &n);
    bool seen = false;
    for (size_t i = 0; i < n && !seen; i++) {
      const unisock_value* e = nullptr;
      if (unisock_value_array_get(arr, i, &e) == UNISOCK_RESULT_OK) seen = text_of(e) == c;
    }
    if (!seen) push(it->second, v_str(c));
  }
}

}  // namespace

// ---- the command line and the file --------------------------------------------------------------

std::string config_path_from_cmdline(const std::string& cmdline, const std::string& cwd) {
  std::vector<std::string> args;
  size_t i = 0;
  while (i < cmdline.size()) {
    size_t j = cmdline.find('\0', i);
    if (j == std::string::npos) j = cmdline.size();
    args.push_back(cmdline.substr(i, j - i));
    i = j + 1;
  }
  for (size_t k = 1; k < args.size(); k++) {
    const std::string& a = args[k];
    if (!a.empty() && a[0] == '-') continue;
    if (a.empty()) return std::string();
    if (a[0] == '/' || cwd.empty()) return a;
    return cwd + (cwd.back() == '/' ? "" : "/") + a;
  }
  return std::string();
}

bool read_small_file(const std::string& path, size_t max, std::string* text, std::string* err) {
  text->clear();
  int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    *err = strerror(errno);
    return false;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    *err = "not a regular file";
    close(fd);
    return false;
  }
  char buf[8192];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *err = strerror(errno);
      close(fd);
      return false;
    }
    if (n == 0) break;
    if (text->size() + static_cast<size_t>(n) > max) {
      *err = "larger than " + std::to_string(max) + " bytes";
      close(fd);
      return false;
    }
    text->append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return true;
}

DriverConfig capture_driver_config() {
  DriverConfig c;
  std::string cmdline, err;
  if (!read_small_file("/proc/self/cmdline", kMaxFile, &cmdline, &err)) {
    c.read_error = "cannot read /proc/self/cmdline: " + err;
    return c;
  }
  std::string cwd;
  if (char* wd = getcwd(nullptr, 0)) {
    cwd = wd;
    free(wd);
  }
  c.path = config_path_from_cmdline(cmdline, cwd);
  if (c.path.empty()) {
    c.read_error = "no config file on the driver's command line";
    return c;
  }
  if (!read_small_file(c.path, kMaxFile, &c.text, &err)) {
    c.read_error = "cannot read it: " + err;
    c.text.clear();
  }
  return c;
}

// ---- the driver's reading of its lines -------------------------------------------------------------

std::vector<ConfigLine> config_lines(const std::string& text, int* stopped_at) {
  std::vector<ConfigLine> out;
  if (stopped_at) *stopped_at = 0;
  size_t i = 0;
  int number = 0;
  while (i < text.size()) {
    size_t j = text.find('\n', i);
    if (j == std::string::npos) j = text.size();
    std::string line = text.substr(i, j - i);
    i = j + 1;
    number++;
    if (line.size() > kMaxConfigLine) {
      if (stopped_at) *stopped_at = number;
      break;
    }
    line = line.substr(0, line.find('\0'));
    line = trim(line.substr(0, line.find('#')));
    if (!line.empty()) out.push_back({number, line});
  }
  return out;
}

bool scan_config_value(const std::string& line, const std::string& key, std::string* value) {
  const std::string fmt = key + " : ";
  size_t i = 0;
  for (char c : fmt) {
    if (blank(c)) {
      while (i < line.size() && blank(line[i])) i++;
    } else if (i < line.size() && line[i] == c) {
      i++;
    } else {
      return false;
    }
  }
  size_t j = line.find('\n', i);
  if (j == std::string::npos) j = line.size();
  if (j == i) return false;
  *value = line.substr(i, j - i);
  return true;
}

// ---- the policy ----------------------------------------------------------------------------------------

ConfigPolicy policy_from_config(const DriverConfig& cfg) {
  ConfigPolicy p;
  const std::string where = cfg.path.empty() ? std::string("the driver's config file") : cfg.path;
  std::vector<std::string> cmds = external_commands(cfg, &p.notes);

  // The default: HTTP and WebSocket (unisock's own default) and TLS files in the mudlib,
  // which upstream could load from anywhere.
  Keys dflt;
  {
    UValue modes = v_arr();
    for (int m : {10, 11, 12, 13, 16, 17, 18, 19}) push(modes, v_int(m));
    dflt.emplace("modes", std::move(modes));
    UValue tls = v_arr();
    if (!cfg.mudlib_host.empty()) push(tls, v_str(cfg.mudlib_host));
    dflt.emplace("tls_dirs", std::move(tls));
    add_commands(&dflt, cmds);
    p.fallback = json_of_keys(dflt);
  }

  if (!cfg.read_error.empty()) {
    p.errors.push_back("unisock: the policy lines of " + where + " cannot be read (" +
                       cfg.read_error + ")");
    return p;
  }
  int stopped = 0;
  std::vector<ConfigLine> lines = config_lines(cfg.text, &stopped);

  // The file must be the one the driver read: its mudlib directory says so.
  std::string mudlib;
  bool found = false;
  for (const auto& l : lines) {
    if (scan_config_value(l.text, "mudlib directory", &mudlib)) {
      found = true;
      break;
    }
  }
  if (!found || mudlib != cfg.mudlib_dir) {
    p.errors.push_back("unisock: " + where + " is not the config file the driver read (its " +
                       "\"mudlib directory\" is " + (found ? quoted(mudlib) : "missing") +
                       ", the driver's is " + quoted(cfg.mudlib_dir) + "): its policy lines are not used");
    return p;
  }
  if (stopped) {
    // That line and every one after it are lost to the driver and to us
    // alike: a unisock line among them (that line itself too) is an error.
    size_t pos = 0;
    int n = 0;
    bool lost = false;
    while (pos < cfg.text.size()) {
      size_t e = cfg.text.find('\n', pos);
      if (e == std::string::npos) e = cfg.text.size();
      n++;
      if (n >= stopped && lower(trim(cfg.text.substr(pos, e - pos))).compare(0, 7, "unisock") == 0)
        lost = true;
      pos = e + 1;
    }
    if (lost) {
      p.errors.push_back("unisock: " + where + " line " + std::to_string(stopped) +
                         " is longer than " + std::to_string(kMaxConfigLine) +
                         " characters: the driver stops reading its config file there, so the "
                         "unisock lines from there on (that line too) are not read");
    }
  }

  Keys from_lines;
  int file_line = 0;
  auto line_error = [&](const ConfigLine& l, const std::string& why) {
    p.errors.push_back("unisock: " + where + " line " + std::to_string(l.number) + " " +
                       quoted(l.text) + ": " + why);
  };
  auto note_line = [&](const std::string& key, int number) {
    for (auto& kl : p.key_lines) {
      if (kl.first == key) {
        kl.second.push_back(number);
        return;
      }
    }
    p.key_lines.emplace_back(key, std::vector<int>{number});
  };
  for (const auto& l : lines) {
    if (lower(l.text).compare(0, 7, "unisock") != 0) continue;
    const std::string& t = l.text;
    size_t i = 7;
    if (i >= t.size() || !blank(t[i])) {
      line_error(l, "not a policy line: they read \"unisock <key> : <values>\"");
      continue;
    }
    while (i < t.size() && blank(t[i])) i++;
    size_t k = i;
    while (i < t.size() && !blank(t[i]) && t[i] != ':') i++;
    std::string key = t.substr(k, i - k);
    while (i < t.size() && blank(t[i])) i++;
    if (key.empty() || i >= t.size() || t[i] != ':') {
      line_error(l, "not a policy line: they read \"unisock <key> : <values>\"");
      continue;
    }
    std::string value = trim(t.substr(i + 1));
    p.lines++;
    if (key == "policy_file") {
      if (!p.policy_file.empty()) {
        line_error(l, "a second policy_file (the first is on line " + std::to_string(file_line) + ")");
      } else if (value.empty() || value[0] != '/') {
        line_error(l, "policy_file wants an absolute path");
      } else {
        p.policy_file = value;
        file_line = l.number;
      }
      continue;
    }
    note_line(key, l.number);
    std::vector<std::string> w = words(value);
    if (is_flag(key)) {
      if (from_lines.count(key)) {
        line_error(l, "\"" + key + "\" is given twice");
      } else if (w.size() != 1 || (w[0] != "0" && w[0] != "1")) {
        line_error(l, "\"" + key + "\" wants 0 or 1");
      } else {
        from_lines.emplace(key, v_int(w[0] == "1"));
      }
      continue;
    }
    auto it = from_lines.find(key);
    if (it == from_lines.end()) it = from_lines.emplace(key, v_arr()).first;
    if (unisock_value_get_kind(it->second.get()) != UNISOCK_VALUE_KIND_ARRAY) continue;
    for (const auto& word : w) {
      push(it->second, takes_numbers(key) && all_digits(word) ? v_int(atoll(word.c_str()))
                                                               : v_str(word));
    }
  }

  Keys keys;
  if (!p.policy_file.empty()) {
    // The whole policy in unisock's JSON form; lines replace its keys.
    std::string text, err;
    unisock_value* v = nullptr;
    const std::string what = "unisock: the policy_file " + p.policy_file + " (" + where +
                             " line " + std::to_string(file_line) + ")";
    if (!read_small_file(p.policy_file, kMaxFile, &text, &err)) {
      p.errors.push_back(what + " cannot be read: " + err);
    } else if (unisock_value_from_json(text.data(), text.size(), &v) != UNISOCK_RESULT_OK) {
      p.errors.push_back(what + " is not JSON: " + last_error_text());
    } else {
      UValue file(v);
      size_t n = 0;
      if (unisock_value_get_kind(v) != UNISOCK_VALUE_KIND_MAPPING ||
          unisock_value_len(v, &n) != UNISOCK_RESULT_OK) {
        p.errors.push_back(what + " is not a JSON object of the policy's keys");
      }
      for (size_t i = 0; i < n; i++) {
        const unisock_value* k = nullptr;
        const unisock_value* val = nullptr;
        unisock_value* copy = nullptr;
        if (unisock_value_mapping_get(v, i, &k, &val) != UNISOCK_RESULT_OK ||
            unisock_value_clone(val, &copy) != UNISOCK_RESULT_OK)
          continue;
        keys[text_of(k)] = UValue(copy);
      }
    }
  } else {
    for (auto& kv : dflt) {
      unisock_value* copy = nullptr;
      if (unisock_value_clone(kv.second.get(), &copy) == UNISOCK_RESULT_OK) keys[kv.first] = UValue(copy);
    }
  }
  for (auto& kv : from_lines) keys[kv.first] = std::move(kv.second);
  add_commands(&keys, cmds);
  if (p.errors.empty()) p.json = json_of_keys(keys);
  return p;
}

std::string policy_in_force() {
  unisock_value* v = nullptr;
  if (unisock_get_policy(&v) != UNISOCK_RESULT_OK) return "(unknown: " + last_error_text() + ")";
  UValue hold(v);
  return json_of(v);
}

std::vector<std::string> apply_config_policy(const DriverConfig& cfg) {
  ConfigPolicy p = policy_from_config(cfg);
  std::vector<std::string> out = p.errors;
  out.insert(out.end(), p.notes.begin(), p.notes.end());
  const std::string where = cfg.path.empty() ? std::string("the driver's config file") : cfg.path;
  std::string origin;
  if (p.errors.empty()) {
    if (unisock_set_policy(p.json.data(), p.json.size()) == UNISOCK_RESULT_OK) {
      if (!p.policy_file.empty()) {
        origin = "from " + p.policy_file + " and " + std::to_string(p.lines) +
                 " unisock line(s) of " + where;
      } else if (p.lines) {
        origin = "from " + std::to_string(p.lines) + " unisock line(s) of " + where;
      } else {
        origin = "the default: no unisock line in " + where;
      }
    } else {
      // unisock names the key; add the lines (or the file) that gave it.
      std::string msg = last_error_text();
      std::string from;
      for (const auto& kl : p.key_lines) {
        if (msg.find("\"" + kl.first + "\"") == std::string::npos) continue;
        std::string nums;
        for (int n : kl.second) nums += (nums.empty() ? "" : ", ") + std::to_string(n);
        from += (from.empty() ? "" : "; ") + std::string(kl.second.size() > 1 ? "lines " : "line ") +
                nums;
      }
      if (from.empty() && !p.policy_file.empty()) from = "the policy_file " + p.policy_file;
      out.push_back("unisock: the policy of " + where + " is refused: " + msg +
                    (from.empty() ? "" : " (" + from + ")"));
    }
  }
  if (origin.empty()) {
    if (unisock_set_policy(p.fallback.data(), p.fallback.size()) == UNISOCK_RESULT_OK) {
      origin = "the default, because of the problem above: fix it and restart the driver";
    } else {
      out.push_back("unisock: the default policy is refused too: " + last_error_text());
      origin = "unisock's own default";
    }
  }
  out.push_back("unisock: policy in force (" + origin + "): " + policy_in_force());
  return out;
}

std::string policy_path(const std::string& path, bool may_be_new) {
  unisock_value* v = nullptr;
  if (unisock_resolve_path(path.data(), path.size(), may_be_new ? 1 : 0, &v) != UNISOCK_RESULT_OK)
    return path;
  UValue hold(v);
  return text_of(v);
}

}  // namespace unisock_shim
