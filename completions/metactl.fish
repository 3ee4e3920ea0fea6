function __metactl_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __metactl_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __metactl_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __metactl_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __metactl_parse_tokens -S
    set -l unparsed_tokens (__metactl_tokens -pc)
    switch $unparsed_tokens[1]
    case 'metactl'
        __metactl_parse_subcommand 0 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'devices'
            __metactl_parse_subcommand 0 's/set=' 'config-dir=' 'run-dir=' 'q/quiet' 'v/verbose' 'json' 'all' 'version' 'h/help'
        case 'help'
            __metactl_parse_subcommand -r 1 'version'
        end
    end
end

function __metactl_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __metactl_parse_subcommand -S -a positional_count
    argparse -s r -- $argv
    set -l option_specs $argv[2..]
    set -l is_repeating_positional $_flag_r
    set -el _flag_r
    set -a commands $unparsed_tokens[1]
    set positional_index 0
    while true
        set -e unparsed_tokens[1]
        argparse -sn "$commands" $option_specs -- $unparsed_tokens 2> /dev/null
        set unparsed_tokens $argv
        set positional_index (math $positional_index + 1)
        for non_repeating_flag_or_option in $non_repeating_flags_or_options
            if set -ql "_flag_$(string replace -a - _ -- $non_repeating_flag_or_option)"
                set non_repeating_flags_or_options_absent 1
                break
            end
        end
        test (count $unparsed_tokens) -eq 0 -o \( -z "$is_repeating_positional" -a "$positional_index" -gt "$positional_count" \) && break
    end
end

function __metactl_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __metactl_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__metactl_tokens -p)
    if test -z "$(__metactl_tokens -t)"
        set -l index (count (__metactl_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'metactl' -f
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl" -eq 1' -fa 'devices' -d 'List block devices: size, kind, model/serial, signature, use and set membership.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl devices" s set' -s 's' -l 'set' -d 'The set to act on.' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl devices" config-dir' -l 'config-dir' -d 'Where this host records the sets it knows (env METACTL_CONFIG_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl devices" run-dir' -l 'run-dir' -d 'Sockets, PID and lock files (env METACTL_RUN_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl devices" q quiet' -l 'quiet' -s 'q' -d 'Print less.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl devices" v verbose' -l 'verbose' -s 'v' -d 'Print more.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl devices" json' -l 'json' -d 'Print one JSON document (schema in metactl(8)).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl devices" all' -l 'all' -d 'Also list empty (detached) loop devices.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl devices" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl devices" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl help" version' -l 'version' -d 'Show the version.'
