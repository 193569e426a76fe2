// The points of a sweep: NAME=V1,V2 words, their product or zip, and CSV or JSON files of rows.
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "sweep/sweep.hpp"

namespace ferry::sweep {
namespace {

bool is_name_char(char c, bool first) {
  bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  return first ? letter : letter || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

bool is_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i)
    if (!is_name_char(name[i], i == 0)) return false;
  return true;
}

[[noreturn]] void usage(const std::string& message) { throw Error(message, Error::Kind::usage); }

}  // namespace

bool is_parameter_word(std::string_view word) {
  std::size_t eq = word.find('=');
  return eq != std::string_view::npos && is_name(word.substr(0, eq));
}

Parameter parse_parameter(std::string_view word) {
  if (!is_parameter_word(word))
    usage(fmt::format("'{}': expected NAME=V1,V2,... (NAME: letters, digits, _ . -)",
                      util::printable(word)));
  std::size_t eq = word.find('=');
  Parameter p;
  p.name = std::string(word.substr(0, eq));
  std::string value;
  for (std::size_t i = eq + 1; i < word.size(); ++i) {
    char c = word[i];
    if (c == '\\' && i + 1 < word.size() && (word[i + 1] == ',' || word[i + 1] == '\\')) {
      value += word[++i];
    } else if (c == ',') {
      p.values.push_back(std::move(value));
      value.clear();
    } else {
      value += c;
    }
  }
  p.values.push_back(std::move(value));
  return p;
}

Grid product(const std::vector<Parameter>& parameters) {
  Grid grid;
  if (parameters.empty()) return grid;
  std::size_t total = 1;
  for (const Parameter& p : parameters) {
    grid.names.push_back(p.name);
    total *= p.values.size();
  }
  // Point i in mixed radix: the last parameter is the lowest digit, so it varies fastest.
  for (std::size_t i = 0; i < total; ++i) {
    std::vector<std::string> point(parameters.size());
    std::size_t rest = i;
    for (std::size_t k = parameters.size(); k-- > 0;) {
      const auto& values = parameters[k].values;
      point[k] = values[rest % values.size()];
      rest /= values.size();
    }
    grid.points.push_back(std::move(point));
  }
  return grid;
}

Grid zip(const std::vector<Parameter>& parameters) {
  Grid grid;
  if (parameters.empty()) return grid;
  std::vector<std::string> lengths;
  bool same = true;
  for (const Parameter& p : parameters) {
    grid.names.push_back(p.name);
    lengths.push_back(fmt::format("{} has {}", p.name, p.values.size()));
    same = same && p.values.size() == parameters[0].values.size();
  }
  if (!same) usage(fmt::format("--zip: the lists differ in length: {}", util::join(lengths, ", ")));
  for (std::size_t i = 0; i < parameters[0].values.size(); ++i) {
    std::vector<std::string> point;
    for (const Parameter& p : parameters) point.push_back(p.values[i]);
    grid.points.push_back(std::move(point));
  }
  return grid;
}

Grid parse_points_csv(std::string_view text, std::string_view subject) {
  // RFC 4180: fields separated by commas, quoted fields may hold commas, newlines and "" for ".
  std::vector<std::vector<std::string>> rows;
  std::vector<std::size_t> row_lines;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, field_started = false;
  std::size_t line = 1;
  auto end_row = [&] {
    row.push_back(std::move(field));
    field.clear();
    // A line with nothing on it (a blank or the last newline's) is no row.
    if (!(row.size() == 1 && row[0].empty() && !field_started)) {
      rows.push_back(std::move(row));
      row_lines.push_back(line);
    }
    row.clear();
    field_started = false;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        if (c == '\n') ++line;
        field += c;
      }
    } else if (c == '"' && field.empty()) {
      quoted = field_started = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
      field_started = true;
    } else if (c == '\n' || (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) {
      if (c == '\r') ++i;
      end_row();
      ++line;
    } else {
      field += c;
      field_started = true;
    }
  }
  if (quoted) usage(fmt::format("{}: line {}: a quoted field is not closed", subject, line));
  if (field_started || !field.empty() || !row.empty()) end_row();
  if (rows.empty()) usage(fmt::format("{}: no header line (the parameter names)", subject));
  Grid grid;
  grid.names = rows[0];
  for (std::size_t r = 1; r < rows.size(); ++r) {
    if (rows[r].size() != grid.names.size())
      usage(fmt::format("{}: line {}: {} fields, the header has {}", subject, row_lines[r],
                        rows[r].size(), grid.names.size()));
    grid.points.push_back(std::move(rows[r]));
  }
  return grid;
}

Grid parse_points_json(std::string_view text, std::string_view subject) {
  nlohmann::ordered_json json = nlohmann::ordered_json::parse(text, nullptr, false);
  if (json.is_discarded()) usage(fmt::format("{}: not valid JSON", subject));
  if (!json.is_array()) usage(fmt::format("{}: expected a list of objects", subject));
  Grid grid;
  for (std::size_t r = 0; r < json.size(); ++r) {
    const auto& object = json[r];
    if (!object.is_object())
      usage(fmt::format("{}: point {}: expected an object of parameter values", subject, r));
    if (r == 0)
      for (const auto& item : object.items()) grid.names.push_back(item.key());
    if (object.size() != grid.names.size())
      usage(fmt::format("{}: point {}: {} keys, point 0 has {}", subject, r, object.size(),
                        grid.names.size()));
    std::vector<std::string> point;
    for (const std::string& name : grid.names) {
      auto it = object.find(name);
      if (it == object.end())
        usage(fmt::format("{}: point {}: no value for '{}'", subject, r, name));
      if (it->is_string())
        point.push_back(it->get<std::string>());
      else if (it->is_number() || it->is_boolean())
        point.push_back(it->dump());
      else
        usage(
            fmt::format("{}: point {}: '{}' is not a string, number or boolean", subject, r, name));
    }
    grid.points.push_back(std::move(point));
  }
  return grid;
}

Grid read_points(const std::string& path) {
  std::string text = util::read_file(path);
  std::string_view body = util::trim(text);
  if (!body.empty() && body[0] == '[') return parse_points_json(text, path);
  return parse_points_csv(text, path);
}

void check_grid(const Grid& grid) {
  std::set<std::string> seen;
  for (const std::string& name : grid.names) {
    if (!is_name(name))
      usage(fmt::format("parameter '{}': a name is letters, digits, _ . - (not a digit first)",
                        util::printable(name)));
    if (name == "index" || name == "dir")
      usage(
          fmt::format("parameter '{}': the name is taken by {{{}}} (choose another)", name, name));
    if (!seen.insert(name).second) usage(fmt::format("parameter '{}' is given twice", name));
  }
  if (grid.points.empty())
    usage("the sweep has no points (give NAME=V1,V2,... or --from FILE with rows)");
  for (const auto& point : grid.points)
    for (const std::string& value : point)
      if (!util::is_valid_utf8(value))
        usage(fmt::format("value '{}': not UTF-8 (the manifest is JSON)", util::printable(value)));
}

}  // namespace ferry::sweep
