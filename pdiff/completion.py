"""Shell completion: what Tab offers, and `pdiff --install-completion` / `--show-completion` for bash, zsh and fish.

The installed script calls `pdiff` with `_PDIFF_COMPLETE=<shell>` and the command line up to the cursor in
`_PDIFF_COMPLETE_LINE`; pdiff answers with the word it read under the cursor (`word:<text>`) and then either the
candidates, one per line, or `:files` (let the shell complete a file name). Each candidate is the whole shell word;
the bash script trims what bash counts as earlier words (it splits at `=` and `:`), and no space is added after a
candidate ending in `=`, `,` or `(`, where the user types on (`--at x=`, `--wrt x,`, `sin(`).

Commands and option names come from the Click command tree; option values, function names inside an expression
and the variables of the expression already typed from the completers below, chosen by parameter name. Reading the
expression imports the reader (SymPy), which a resident server has warm, so Tab answers in tens of milliseconds
through it. A completion never prints an error: a half-typed expression simply offers no variables.

Our own scripts rather than Typer's: Typer's bash script hands over COMP_WORDS, which bash has already split at
`=` (so `--at x=1,` arrives as four words), and adds a space after every single candidate.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path
from typing import Callable

from pdiff.render import FORMATS

SHELLS = ("bash", "zsh", "fish")
SHELL_VARIABLE, LINE_VARIABLE = "_PDIFF_COMPLETE", "_PDIFF_COMPLETE_LINE"
FILES = ":files"
MAX_LINE = 40_000  # characters: a longer command line is answered with nothing, before it is split
MAX_SECOND_ORDER = 6  # variables up to which the second partials are offered (beyond that, the list is a wall)
_IDENTIFIER_TAIL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")


# ---------------------------------------------------------------------------------------------------------------
# what a parameter offers: completer(params, incomplete) → candidates, params being the values typed so far


def choices(*values: str) -> Callable[[dict, str], list[str]]:
    def complete(params: dict, incomplete: str) -> list[str]:
        return [value for value in values if value.startswith(incomplete)]

    return complete


def files(params: dict, incomplete: str) -> list[str]:
    return [FILES]


def expression(params: dict, incomplete: str) -> list[str]:
    """The function or constant names the last word of a half-typed expression can become: `x^2 + si` →
    `x^2 + sin(`, `x^2 + sinh(` (the text before the word is kept: the shell replaces the whole word)."""
    match = _IDENTIFIER_TAIL.search(incomplete)
    if match is None or incomplete[:match.start()].endswith("."):  # W.T: an attribute, not a function
        return []
    from pdiff.tensor.language import ALL_FUNCTIONS
    from pdiff.vocabulary import CONSTANTS

    head, word = incomplete[:match.start()], match.group()
    return [head + name + ("" if name in CONSTANTS else "(")
            for name in sorted(ALL_FUNCTIONS | CONSTANTS) if name.startswith(word)]


def variables(params: dict) -> list[str]:
    """The variables of the expression on the command line, as pdiff reads it (--var names kept whole)."""
    text = params.get("expression") or params.get("field")
    if not isinstance(text, str) or not text.strip():
        return []
    names = [n.strip() for item in params.get("var", []) for n in item.split(",") if n.strip()]
    try:
        from pdiff.tensor.language import looks_like_tensor

        if looks_like_tensor(text):
            from pdiff.symbolic import natural_key
            from pdiff.tensor.language import read as read_tensor

            return sorted(read_tensor(text, names).names, key=natural_key)
        from pdiff.question import read

        return read(text, names=names).variables
    except Exception:  # half typed, or anything else: no variables, and no error printed into a Tab press
        return []


def partials(params: dict, incomplete: str) -> list[str]:
    """df/dx for each variable; once something is typed, the second partials too (d2f/dx2, d2f/dxdy, f_xy)."""
    names = variables(params)
    offered = [f"df/d{v}" for v in names]
    if incomplete and len(names) <= MAX_SECOND_ORDER:
        single_letters = all(len(v) == 1 for v in names)
        offered += [f"d2f/d{u}2" if u == v else f"d2f/d{u}d{v}" for u in names for v in names]
        offered += [f"f_{v}" for v in names]
        offered += [f"f_{u}{v}" if single_letters else f"f_{{{u},{v}}}" for u in names for v in names]
    return [text for text in offered if text.startswith(incomplete)]


def _after_last_comma(incomplete: str) -> tuple[str, str]:
    """`x=1,y` → ('x=1,', 'y'), the comma outside brackets (`x=[1,2],y`)."""
    from pdiff.reader import top_level

    commas = top_level(incomplete, ",")
    cut = commas[-1] + 1 if commas else 0
    return incomplete[:cut], incomplete[cut:]


def wrt(params: dict, incomplete: str) -> list[str]:
    """--wrt x,y: the next variable after the last comma."""
    head, last = _after_last_comma(incomplete)
    return [head + v for v in variables(params) if v.startswith(last)]


def assignments(params: dict, incomplete: str) -> list[str]:
    """--at x=1,y=2 (and --range, --grid): `name=` for each variable not given yet, after the last comma."""
    head, last = _after_last_comma(incomplete)
    if "=" in last or any(c in last for c in "([{"):  # typing a value
        return []
    given = {part.split("=", 1)[0].strip() for part in head.split(",") if "=" in part}
    return [f"{head}{v}=" for v in variables(params) if v not in given and v.startswith(last)]


COMPLETERS: dict[str, Callable[[dict, str], list[str]]] = {
    "expression": expression, "field": expression, "answer": expression,
    "partials": partials, "partial": partials,
    "at": assignments, "grid": assignments, "ranges": assignments,
    "wrt": wrt,
    "fmt": choices(*FORMATS, "latex"),  # latex: as options.Format accepts it
    "dtype": choices("float64", "float32"), "device": choices("auto", "cpu", "cuda", "mps"),
    "engine": choices("auto", "reverse", "taylor"),
}
FILE_METAVARS = ("FILE", "PATH")  # an option shown with one of these takes a file name


# ---------------------------------------------------------------------------------------------------------------
# which parameter the word under the cursor belongs to


def split_line(line: str) -> tuple[list[str], str]:
    """The shell words before the cursor and the word being typed ('' after a space); an open quote is closed."""
    for closing in ("", '"', "'"):
        try:
            words = shlex.split(line + closing)
        except ValueError:
            continue
        ends_word = not closing and line[-1:].isspace() and not line.endswith("\\" + line[-1:])
        if ends_word or not words:
            return words, ""
        return words[:-1], words[-1]
    return [], ""


def _option_names(command, incomplete: str) -> list[str]:
    names = [name for param in command.params if getattr(param, "opts", None) and param.param_type_name == "option"
             and not getattr(param, "hidden", False) for name in (*param.opts, *param.secondary_opts)]
    names += ["--help"]
    return [name for name in names if name.startswith("--") and name.startswith(incomplete)]


def _takes_value(param) -> bool:
    return not (getattr(param, "is_flag", False) or getattr(param, "count", False))


def _typed_so_far(words: list[str], options: dict, arguments: list) -> tuple[dict, list[str], object, bool]:
    """The words after the command as Click would read them: the values by parameter name, the positional words,
    the option still waiting for its value (or None) and whether `--` was typed."""
    params: dict = {}
    positional, awaiting, only_positional = [], None, False
    for word in words:
        name = word.split("=", 1)[0]
        if awaiting is not None:
            params.setdefault(awaiting.name, []).append(word)
            awaiting = None
        elif word == "--" and not only_positional:
            only_positional = True
        elif not only_positional and name in options:
            if "=" in word:
                params.setdefault(options[name].name, []).append(word.split("=", 1)[1])
            elif _takes_value(options[name]):
                awaiting = options[name]
        else:
            positional.append(word)
    for i, argument in enumerate(arguments):
        if argument.nargs == -1:
            params[argument.name] = positional[i:]
            break
        if i < len(positional):
            params[argument.name] = positional[i]
    return params, positional, awaiting, only_positional


def candidates(root, words: list[str], incomplete: str) -> list[str]:
    """The candidates for `incomplete`, after `words` (the program name first) on the command tree `root`."""
    from pdiff.cli import expressions_not_options

    command, rest = root, list(words[1:])
    while hasattr(command, "commands"):  # a group: skip its options, find the subcommand
        while rest and rest[0].startswith("-"):
            rest.pop(0)
        if not rest:
            if incomplete.startswith("-"):
                return _option_names(command, incomplete)
            return [name for name, sub in command.commands.items() if name.startswith(incomplete) and not sub.hidden]
        command = command.commands.get(rest.pop(0))
        if command is None:
            return []
    options = {name: p for p in command.params if p.param_type_name == "option"
               for name in (*p.opts, *p.secondary_opts)}
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    params, positional, awaiting, only_positional = _typed_so_far(rest, options, arguments)
    prefix = ""
    if awaiting is not None:
        param = awaiting
    elif (not only_positional and incomplete.startswith("--") and "=" in incomplete
          and incomplete.split("=", 1)[0] in options):
        name, _, incomplete = incomplete.partition("=")
        param, prefix = options[name], name + "="
    elif not only_positional and incomplete.startswith("-") and expressions_not_options([incomplete]) == [incomplete]:
        return _option_names(command, incomplete)
    else:
        fixed = [a for a in arguments if a.nargs != -1]
        param = arguments[len(positional)] if len(positional) < len(fixed) else next(
            (a for a in arguments if a.nargs == -1), None)
        if param is None:
            return []
    completer = files if getattr(param, "metavar", None) in FILE_METAVARS else COMPLETERS.get(param.name)
    if completer is None:
        return []
    return [c if c == FILES else prefix + c for c in completer(params, incomplete)]


def answer(app) -> int:
    """Answer one completion request from the environment (the installed script's call): 0, always."""
    shell, line = os.environ.get(SHELL_VARIABLE, ""), os.environ.get(LINE_VARIABLE, "")
    found: list[str] = []
    words, incomplete = ([], "") if len(line) > MAX_LINE else split_line(line)
    if shell in SHELLS and words:
        import typer.main

        try:
            found = candidates(typer.main.get_command(app), words, incomplete)
        except Exception:  # a bug here must not print a traceback into the user's command line
            found = []
    sys.stdout.write("\n".join([f"word:{incomplete}", *(c for c in found if "\n" not in c)]) + "\n")
    return 0


# ---------------------------------------------------------------------------------------------------------------
# the scripts, and installing them

BASH = r"""
_pdiff_completion() {
    local IFS=$'\n' word cur quoted strip c
    local -a found
    found=( $(env _PDIFF_COMPLETE=bash _PDIFF_COMPLETE_LINE="${COMP_LINE:0:COMP_POINT}" "$1" 2>/dev/null) )
    COMPREPLY=()
    [[ ${found[0]} == word:* ]] || return 0
    if [[ ${found[1]} == :files ]]; then
        COMPREPLY=( $(compgen -f -- "${COMP_WORDS[COMP_CWORD]}") )
        compopt -o filenames
        return 0
    fi
    compopt +o default
    # bash splits words at = and : (COMP_WORDBREAKS); pdiff answers whole words: keep only bash's last piece
    word=${found[0]#word:}
    cur=${COMP_WORDS[COMP_CWORD]}
    quoted=${cur:0:1}
    cur=${cur#[\"\']}
    strip=${word%"$cur"}
    for c in "${found[@]:1}"; do
        COMPREPLY+=( "${c#"$strip"}" )
    done
    if (( ${#COMPREPLY[@]} == 1 )) && [[ ${COMPREPLY[0]} == *[=,\(] ]]; then
        compopt -o nospace
        # inside quotes readline closes the quote after a single match: a second one keeps it open
        [[ $quoted == [\"\'] ]] && COMPREPLY+=( "${COMPREPLY[0]})" )
    fi
    return 0
}
complete -o default -F _pdiff_completion pdiff
"""

ZSH = r"""#compdef pdiff
_pdiff() {
    local -a found spaced joined
    local c
    found=( "${(@f)$(_PDIFF_COMPLETE=zsh _PDIFF_COMPLETE_LINE="${(j: :)words[1,CURRENT]}" ${words[1]} 2>/dev/null)}" )
    [[ ${found[1]} == word:* ]] || return 1
    if [[ ${found[2]} == :files ]]; then
        _files
        return
    fi
    for c in "${(@)found[2,-1]}"; do
        [[ -z $c ]] && continue
        if [[ $c == *[=,\(] ]]; then joined+=( "$c" ); else spaced+=( "$c" ); fi
    done
    (( ${#spaced} )) && compadd -U -Q -- "${spaced[@]}"
    (( ${#joined} )) && compadd -U -Q -S '' -- "${joined[@]}"
    return 0
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _pdiff "$@"
else
    compdef _pdiff pdiff
fi
"""

FISH = r"""function __pdiff_complete
    set -l found (env _PDIFF_COMPLETE=fish _PDIFF_COMPLETE_LINE=(commandline -cp) pdiff 2>/dev/null)
    string match -q 'word:*' -- $found[1]; or return
    if test "$found[2]" = ":files"
        __fish_complete_path (commandline -ct)
        return
    end
    printf '%s\n' $found[2..-1]
end
complete -c pdiff -f -a '(__pdiff_complete)'
"""

SCRIPTS = {"bash": BASH.lstrip(), "zsh": ZSH, "fish": FISH}


def detect_shell() -> str:
    """The login shell ($SHELL), when it is one of SHELLS."""
    name = os.path.basename(os.environ.get("SHELL", ""))
    if name not in SHELLS:
        raise ValueError(f"cannot tell the shell from SHELL={os.environ.get('SHELL', '')!r}: set it to one of "
                         f"{', '.join(SHELLS)} (SHELL=zsh pdiff --install-completion)")
    return name


def _add_line(rc: Path, line: str) -> None:
    text = rc.read_text(encoding="utf-8") if rc.is_file() else ""
    if line not in text.splitlines():
        rc.write_text(text + ("" if not text or text.endswith("\n") else "\n") + line + "\n", encoding="utf-8")


def install(shell: str, home: Path | None = None) -> list[Path]:
    """Write the script where the shell looks for it (and the line that loads it, for bash and zsh): the files
    written or changed."""
    home = home or Path.home()
    if shell == "fish":
        target = home / ".config" / "fish" / "completions" / "pdiff.fish"
        changed = [target]
    elif shell == "zsh":
        target = home / ".zfunc" / "_pdiff"
        changed = [target, home / ".zshrc"]
    else:
        target = home / ".bash_completions" / "pdiff.sh"
        changed = [target, home / ".bashrc"]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(SCRIPTS[shell], encoding="utf-8")
    if shell == "zsh":
        _add_line(home / ".zshrc", "fpath+=~/.zfunc; autoload -Uz compinit; compinit")
    elif shell == "bash":
        _add_line(home / ".bashrc", f"source '{target}'")
    return changed
