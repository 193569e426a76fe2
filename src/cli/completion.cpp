// The shell completion scripts (command_tree.hpp). Each shell gets the same facts, written as data
// the script's one function walks: the words typed so far pick the command (a word that names a
// verb of the command reached so far descends into it; an option that takes a value skips its
// value), then the word under the cursor is completed from that command's verbs, options, an
// option's choices, or file names.
#include <fmt/format.h>

#include "cli/command_tree.hpp"

namespace ferry::cli {
namespace {

// 'text' for sh-like shells (bash, zsh).
std::string sh_quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// 'text' for fish, whose single quotes take \' and \\.
std::string fish_quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

std::string joined(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

std::vector<std::string> command_names(const CommandDoc& c) {
  std::vector<std::string> names;
  for (const CommandDoc& sub : c.commands) names.push_back(sub.path.back());
  return names;
}

// The fixed values of its positionals; whether one takes any word (a file name, say).
std::vector<std::string> positional_values(const CommandDoc& c) {
  std::vector<std::string> values;
  for (const PositionalDoc& p : c.positionals)
    values.insert(values.end(), p.choices.begin(), p.choices.end());
  return values;
}
bool takes_files(const CommandDoc& c) {
  for (const PositionalDoc& p : c.positionals)
    if (p.choices.empty()) return true;
  return false;
}

std::vector<std::string> option_names(const CommandDoc& c, bool valued_only) {
  std::vector<std::string> names;
  for (const OptionDoc& o : c.options)
    if (!valued_only || !o.value.empty()) names.insert(names.end(), o.names.begin(), o.names.end());
  return names;
}

// The data both sh-like scripts share: `_ferry_data PATH KIND` prints the command's verbs
// (commands), its options (options), those that take a value (valued), its positionals' fixed
// values (values), 1 when it takes file names (files); `_ferry_choices PATH OPTION` prints an
// option's values.
std::string sh_data(const CommandDoc& root) {
  std::string data = "_ferry_data() {\n  case \"$1:$2\" in\n";
  std::string choices = "_ferry_choices() {\n  case \"$1:$2\" in\n";
  for (const CommandDoc* c : all_commands(root)) {
    auto line = [&](const char* kind, const std::string& words) {
      if (!words.empty())
        data += fmt::format("    {}) echo {} ;;\n", sh_quoted(c->name() + ":" + kind),
                            sh_quoted(words));
    };
    line("commands", joined(command_names(*c)));
    line("options", joined(option_names(*c, false)));
    line("valued", joined(option_names(*c, true)));
    line("values", joined(positional_values(*c)));
    if (takes_files(*c)) line("files", "1");
    for (const OptionDoc& o : c->options) {
      if (o.choices.empty()) continue;
      for (const std::string& n : o.names)
        choices += fmt::format("    {}) echo {} ;;\n", sh_quoted(c->name() + ":" + n),
                               sh_quoted(joined(o.choices)));
    }
  }
  return data + "  esac\n}\n" + choices + "  esac\n}\n";
}

// The walk over the words before the cursor, in the syntax bash and zsh share. WORDS is an
// array of the words after `ferry`; sets cmd_path, and expecting to the option whose value the
// cursor's word is ("" if none).
const char* k_sh_walk = R"sh(  local cmd_path=ferry expecting= word
  for word in "${before[@]}"; do
    if [ -n "$expecting" ]; then
      [ "$word" = "=" ] || expecting=
      continue
    fi
    case "$word" in
      --*=*) ;;
      -*) case " $(_ferry_data "$cmd_path" valued) " in *" $word "*) expecting=$word ;; esac ;;
      *) case " $(_ferry_data "$cmd_path" commands) " in *" $word "*) cmd_path="$cmd_path $word" ;; esac ;;
    esac
  done
)sh";

std::string bash_script(const CommandDoc& root, const std::string& version) {
  std::string s = fmt::format(
      "# bash completion for ferry, from `ferry completion bash` ({}).\n"
      "# Installed as share/bash-completion/completions/ferry; or: eval \"$(ferry completion "
      "bash)\"\n",
      version);
  s += sh_data(root);
  s += R"sh(_ferry() {
  local cur=${COMP_WORDS[COMP_CWORD]}
  local -a before=("${COMP_WORDS[@]:1:COMP_CWORD-1}")
)sh";
  s += k_sh_walk;
  s +=
      R"sh(  # bash splits --opt=value at the '=' (COMP_WORDBREAKS): the cursor's word is then the value
  # (or the '=' itself, with nothing typed after it).
  [ "$cur" = "=" ] && cur=
  local choices
  if [ -n "$expecting" ]; then
    choices=$(_ferry_choices "$cmd_path" "$expecting")
    if [ -n "$choices" ]; then
      COMPREPLY=($(compgen -W "$choices" -- "$cur"))
    else
      COMPREPLY=($(compgen -f -- "$cur"))
    fi
    return 0
  fi
  case "$cur" in
    --*=*)
      choices=$(_ferry_choices "$cmd_path" "${cur%%=*}")
      COMPREPLY=($(compgen -P "${cur%%=*}=" -W "$choices" -- "${cur#*=}"))
      return 0 ;;
    -*)
      COMPREPLY=($(compgen -W "$(_ferry_data "$cmd_path" options)" -- "$cur"))
      return 0 ;;
  esac
  COMPREPLY=($(compgen -W "$(_ferry_data "$cmd_path" commands) $(_ferry_data "$cmd_path" values)" -- "$cur"))
  if [ "$(_ferry_data "$cmd_path" files)" = 1 ]; then
    COMPREPLY+=($(compgen -f -- "$cur"))
  fi
  return 0
}
complete -o filenames -o bashdefault -F _ferry ferry
)sh";
  return s;
}

std::string zsh_script(const CommandDoc& root, const std::string& version) {
  std::string s = fmt::format(
      "#compdef ferry\n"
      "# zsh completion for ferry, from `ferry completion zsh` ({}).\n"
      "# Installed as share/zsh/site-functions/_ferry; or: source <(ferry completion zsh)\n",
      version);
  s += sh_data(root);
  // The verbs with their descriptions, for _describe.
  s += "_ferry_described() {\n  case \"$1\" in\n";
  for (const CommandDoc* c : all_commands(root)) {
    if (c->commands.empty()) continue;
    std::string entries;
    for (const CommandDoc& sub : c->commands)
      entries += " " + sh_quoted(sub.path.back() + ":" + sub.description);
    s += fmt::format("    {}) reply=({}) ;;\n", sh_quoted(c->name()), entries);
  }
  s += "    *) reply=() ;;\n  esac\n}\n";
  s += R"sh(_ferry() {
  local cur=${words[CURRENT]}
  local -a before reply
  before=("${(@)words[2,CURRENT-1]}")
)sh";
  s += k_sh_walk;
  s += R"sh(  local -a choices
  if [ -n "$expecting" ]; then
    choices=(${=$(_ferry_choices "$cmd_path" "$expecting")})
    if (( ${#choices} )); then
      compadd -- "${choices[@]}"
    else
      _files
    fi
    return
  fi
  if [[ $cur == -* ]]; then
    choices=(${=$(_ferry_data "$cmd_path" options)})
    compadd -- "${choices[@]}"
    return
  fi
  _ferry_described "$cmd_path"
  (( ${#reply} )) && _describe 'command' reply
  choices=(${=$(_ferry_data "$cmd_path" values)})
  (( ${#choices} )) && compadd -- "${choices[@]}"
  [ "$(_ferry_data "$cmd_path" files)" = 1 ] && _files
  return 0
}
if [ "$funcstack[1]" = "_ferry" ]; then
  _ferry "$@"
else
  compdef _ferry ferry
fi
)sh";
  return s;
}

std::string fish_script(const CommandDoc& root, const std::string& version) {
  std::string s = fmt::format(
      "# fish completion for ferry, from `ferry completion fish` ({}).\n"
      "# Installed as share/fish/vendor_completions.d/ferry.fish; or: ferry completion fish | "
      "source\n",
      version);
  s += "function __ferry_data\n  switch \"$argv[1]:$argv[2]\"\n";
  for (const CommandDoc* c : all_commands(root)) {
    auto line = [&](const char* kind, const std::vector<std::string>& words) {
      if (words.empty()) return;
      s += fmt::format("    case {}\n      printf '%s\\n' {}\n",
                       fish_quoted(c->name() + ":" + kind), joined(words));
    };
    line("commands", command_names(*c));
    line("valued", option_names(*c, true));
  }
  s += "  end\nend\n";
  s += R"sh(# The command the words before the cursor have reached: "ferry", "ferry job save"...
function __ferry_path
  set -l words (commandline -opc)
  set -e words[1]
  set -l cmd_path ferry
  set -l skip 0
  for word in $words
    if test $skip = 1
      set skip 0
      continue
    end
    switch $word
      case '--*=*'
      case '-*'
        contains -- $word (__ferry_data $cmd_path valued); and set skip 1
      case '*'
        contains -- $word (__ferry_data $cmd_path commands); and set cmd_path "$cmd_path $word"
    end
  end
  echo $cmd_path
end
complete -c ferry -f
)sh";
  for (const CommandDoc* c : all_commands(root)) {
    std::string when =
        fmt::format("-n {}", fish_quoted("test (__ferry_path) = " + sh_quoted(c->name())));
    for (const CommandDoc& sub : c->commands)
      s += fmt::format("complete -c ferry {} -a {} -d {}\n", when, sub.path.back(),
                       fish_quoted(sub.description));
    if (std::vector<std::string> values = positional_values(*c); !values.empty())
      s += fmt::format("complete -c ferry {} -a {}\n", when, fish_quoted(joined(values)));
    if (takes_files(*c)) s += fmt::format("complete -c ferry {} -F\n", when);
    for (const OptionDoc& o : c->options) {
      std::string names;
      for (const std::string& n : o.names)
        names += n.rfind("--", 0) == 0 ? " -l " + n.substr(2) : " -s " + n.substr(1);
      std::string value;
      if (!o.choices.empty())
        value = " -x -a " + fish_quoted(joined(o.choices));
      else if (!o.value.empty())
        value = " -r -F";
      s += fmt::format("complete -c ferry {}{}{} -d {}\n", when, names, value,
                       fish_quoted(o.description));
    }
  }
  return s;
}

}  // namespace

std::string completion_script(const CommandDoc& root, Shell shell, const std::string& version) {
  switch (shell) {
    case Shell::bash: return bash_script(root, version);
    case Shell::zsh: return zsh_script(root, version);
    case Shell::fish: return fish_script(root, version);
  }
  return {};
}

}  // namespace ferry::cli
