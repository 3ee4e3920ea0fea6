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
        case 'create'
            __metactl_parse_subcommand -r 3 's/set=' 'config-dir=' 'run-dir=' 'q/quiet' 'v/verbose' 'o=+' 'b=+' 'i=' 'hot-spare-pool=' 'no-init' 'f/force' 'no-resync' 'write-log=' 'json' 'version' 'h/help'
        case 'clear'
            __metactl_parse_subcommand -r 1 's/set=' 'config-dir=' 'run-dir=' 'q/quiet' 'v/verbose' 'f/force' 'version' 'h/help'
        case 'grow'
            __metactl_parse_subcommand -r 2 's/set=' 'config-dir=' 'run-dir=' 'q/quiet' 'v/verbose' 'i=' 'wait' 'f/force' 'cancel' 'json' 'version' 'h/help'
        case 'status'
            __metactl_parse_subcommand -r 1 's/set=' 'config-dir=' 'run-dir=' 'q/quiet' 'v/verbose' 'p' 'c' 'json' 'version' 'h/help'
        case 'db'
            __metactl_parse_subcommand 0 'version' 'h/help'
            switch $unparsed_tokens[1]
            case 'create'
                __metactl_parse_subcommand -r 1 's/set=' 'config-dir=' 'run-dir=' 'q/quiet' 'v/verbose' 'copies=' 'f/force' 'version' 'h/help'
            case 'add'
                __metactl_parse_subcommand -r 1 's/set=' 'config-dir=' 'run-dir=' 'q/quiet' 'v/verbose' 'copies=' 'f/force' 'version' 'h/help'
            case 'delete'
                __metactl_parse_subcommand -r 1 's/set=' 'config-dir=' 'run-dir=' 'q/quiet' 'v/verbose' 'f/force' 'version' 'h/help'
            case 'status'
                __metactl_parse_subcommand 0 's/set=' 'config-dir=' 'run-dir=' 'q/quiet' 'v/verbose' 'json' 'version' 'h/help'
            end
        case 'import'
            __metactl_parse_subcommand -r 1 's/set=' 'config-dir=' 'run-dir=' 'q/quiet' 'v/verbose' 'json' 'no-scan' 'version' 'h/help'
        case 'serve'
            __metactl_parse_subcommand -r 1 's/set=' 'config-dir=' 'run-dir=' 'q/quiet' 'v/verbose' 'socket=' 'listen=' 'tls=' 'tls-certificates=' 'tls-psk=' 'tls-verify-peer' 'insecure' 'cache=' 'read-only' 'metrics=' 'restore-maps' 'unmap-on-exit' 'read-only-volume=+' 'version' 'h/help'
        case 'replace'
            __metactl_parse_subcommand -r 2 's/set=' 'config-dir=' 'run-dir=' 'q/quiet' 'v/verbose' 'enable=' 'wait' 'f/force' 'json' 'version' 'h/help'
        case 'hs'
            __metactl_parse_subcommand 0 'version' 'h/help'
            switch $unparsed_tokens[1]
            case 'create'
                __metactl_parse_subcommand -r 2 's/set=' 'config-dir=' 'run-dir=' 'q/quiet' 'v/verbose' 'f/force' 'version' 'h/help'
            case 'add'
                __metactl_parse_subcommand -r 2 's/set=' 'config-dir=' 'run-dir=' 'q/quiet' 'v/verbose' 'f/force' 'version' 'h/help'
            case 'delete'
                __metactl_parse_subcommand -r 2 's/set=' 'config-dir=' 'run-dir=' 'q/quiet' 'v/verbose' 'version' 'h/help'
            case 'enable'
                __metactl_parse_subcommand -r 1 's/set=' 'config-dir=' 'run-dir=' 'q/quiet' 'v/verbose' 'version' 'h/help'
            end
        case 'set'
            __metactl_parse_subcommand 1 's/set=' 'config-dir=' 'run-dir=' 'q/quiet' 'v/verbose' 'hot-spare-pool=' 'resync-rate=' 'write-log=' 'log-device=' 'f/force' 'read-policy=' 'write-policy=' 'pass=' 'version' 'h/help'
        case 'check'
            __metactl_parse_subcommand 1 's/set=' 'config-dir=' 'run-dir=' 'q/quiet' 'v/verbose' 'repair' 'stop' 'wait' 'json' 'version' 'h/help'
        case 'recover'
            __metactl_parse_subcommand 1 's/set=' 'config-dir=' 'run-dir=' 'q/quiet' 'v/verbose' 'n/dry-run' 'json' 'version' 'h/help'
        case 'attach'
            __metactl_parse_subcommand 2 's/set=' 'config-dir=' 'run-dir=' 'q/quiet' 'v/verbose' 'no-resync' 'f/force' 'json' 'version' 'h/help'
        case 'detach'
            __metactl_parse_subcommand 2 's/set=' 'config-dir=' 'run-dir=' 'q/quiet' 'v/verbose' 'f/force' 'json' 'version' 'h/help'
        case 'offline'
            __metactl_parse_subcommand 2 's/set=' 'config-dir=' 'run-dir=' 'q/quiet' 'v/verbose' 'json' 'version' 'h/help'
        case 'online'
            __metactl_parse_subcommand 2 's/set=' 'config-dir=' 'run-dir=' 'q/quiet' 'v/verbose' 'json' 'version' 'h/help'
        case 'monitor'
            __metactl_parse_subcommand 0 's/set=' 'config-dir=' 'run-dir=' 'q/quiet' 'v/verbose' 'json' 'program=' 'replay=' 'count=' 'version' 'h/help'
        case 'map'
            __metactl_parse_subcommand 2 's/set=' 'config-dir=' 'run-dir=' 'q/quiet' 'v/verbose' 'read-only' 'socket=' 'reconnect-timeout=' 'tls-certificates=' 'tls-psk=' 'tls-username=' 'version' 'h/help'
        case 'unmap'
            __metactl_parse_subcommand 1 's/set=' 'config-dir=' 'run-dir=' 'q/quiet' 'v/verbose' 'f/force' 'version' 'h/help'
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
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl" -eq 1' -fa 'create' -d 'Create a concat, stripe, RAID-5, RAID-6, soft partition or mirror volume (metainit).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl" -eq 1' -fa 'clear' -d 'Delete a volume (metaclear).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl" -eq 1' -fa 'grow' -d 'Grow a volume: append a row to a concat/stripe, columns to a RAID-5, space to a soft partition (metattach).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl" -eq 1' -fa 'status' -d 'Show volumes and hot spare pools (metastat).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl" -eq 1' -fa 'db' -d 'Manage the state database replicas of a set (metadb).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl" -eq 1' -fa 'import' -d 'Find sets by the labels on their devices and record them on this host (metaimport).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl" -eq 1' -fa 'serve' -d 'Serve the set\'s volumes over NBD and run resyncs (the md driver\'s job).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl" -eq 1' -fa 'replace' -d 'Replace or re-enable a RAID-5 or RAID-6 component (metareplace).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl" -eq 1' -fa 'hs' -d 'Manage hot spare pools (metainit hsp, metahs).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl" -eq 1' -fa 'set' -d 'Change volume parameters (metaparam).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl" -eq 1' -fa 'check' -d 'Verify a RAID-5 or RAID-6 volume\'s parity against its data, line by line, or a mirror\'s sides against each other (scrub; md\'s check/repair).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl" -eq 1' -fa 'recover' -d 'Rebuild the soft partitions of a volume from their watermarks (metarecover -p).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl" -eq 1' -fa 'attach' -d 'Add a side to a mirror and resync it (metattach).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl" -eq 1' -fa 'detach' -d 'Remove a side from a mirror (metadetach).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl" -eq 1' -fa 'offline' -d 'Stop using a side of a mirror for a while (metaoffline).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl" -eq 1' -fa 'online' -d 'Bring a side of a mirror back and resync what it missed (metaonline).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl" -eq 1' -fa 'monitor' -d 'Follow the events of a served set: failures, hot spares, resyncs, checks, quorum (mdadm --monitor).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl" -eq 1' -fa 'map' -d 'Give the host a block device for a volume (as rbd map does); prints the device.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl" -eq 1' -fa 'unmap' -d 'Tear down the block device metactl map gave a volume.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl devices" s set' -s 's' -l 'set' -d 'The set to act on (default: local).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl devices" config-dir' -l 'config-dir' -d 'Where this host records the sets it knows (env METACTL_CONFIG_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl devices" run-dir' -l 'run-dir' -d 'Sockets, PID and lock files (env METACTL_RUN_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl devices" q quiet' -l 'quiet' -s 'q' -d 'Print less.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl devices" v verbose' -l 'verbose' -s 'v' -d 'Print more.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl devices" json' -l 'json' -d 'Print one JSON document (its schema is in this command\'s description; errors: metactl(8)).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl devices" all' -l 'all' -d 'Also list empty (detached) loop devices.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl devices" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl devices" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl create" s set' -s 's' -l 'set' -d 'The set to act on (default: local).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl create" config-dir' -l 'config-dir' -d 'Where this host records the sets it knows (env METACTL_CONFIG_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl create" run-dir' -l 'run-dir' -d 'Sockets, PID and lock files (env METACTL_RUN_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl create" q quiet' -l 'quiet' -s 'q' -d 'Print less.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl create" v verbose' -l 'verbose' -s 'v' -d 'Print more.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl create" -eq 1' -fka 'concat stripe raid5 raid6 softpart mirror'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl create" -ge 2' -F
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl create"' -s 'o' -d 'softpart: an extent\'s data offset in the parent (repeat with -b for several extents; a multiple of 4k).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl create"' -s 'b' -d 'softpart: the size of the extent at the -o before it.' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl create" i' -s 'i' -d 'Interlace (stripe unit), 8k–100m.' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl create" hot-spare-pool' -l 'hot-spare-pool' -d 'Hot spare pool for a RAID-5 or RAID-6 volume, or for a mirror\'s sides (SVM\'s metainit -h; -h is help here).' -rfka '(metactl status -c 2>/dev/null | awk \'$2 == "h" {print $1}\')'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl create" no-init' -l 'no-init' -d 'RAID-5 and RAID-6: components are known to be zero; skip parity initialisation.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl create" f force' -l 'force' -s 'f' -d 'Overwrite devices that carry a signature (file system, partition table, …).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl create" no-resync' -l 'no-resync' -d 'mirror: the sides hold the same data already (new, zeroed disks): no resync.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl create" write-log' -l 'write-log' -d 'RAID-5, RAID-6: log every write before it is made in place (auto: the default for RAID-5) or not (none: the default for RAID-6).' -rfka 'auto none'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl create" json' -l 'json' -d 'Print one JSON document (its schema is in this command\'s description; errors: metactl(8)).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl create" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl create" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl clear" s set' -s 's' -l 'set' -d 'The set to act on (default: local).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl clear" config-dir' -l 'config-dir' -d 'Where this host records the sets it knows (env METACTL_CONFIG_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl clear" run-dir' -l 'run-dir' -d 'Sockets, PID and lock files (env METACTL_RUN_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl clear" q quiet' -l 'quiet' -s 'q' -d 'Print less.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl clear" v verbose' -l 'verbose' -s 'v' -d 'Print more.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl clear" -ge 1' -fka '(metactl status -c 2>/dev/null | awk \'$2 != "h" {print $1}\')'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl clear" f force' -l 'force' -s 'f' -d 'Delete even while open or resyncing.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl clear" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl clear" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl grow" s set' -s 's' -l 'set' -d 'The set to act on (default: local).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl grow" config-dir' -l 'config-dir' -d 'Where this host records the sets it knows (env METACTL_CONFIG_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl grow" run-dir' -l 'run-dir' -d 'Sockets, PID and lock files (env METACTL_RUN_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl grow" q quiet' -l 'quiet' -s 'q' -d 'Print less.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl grow" v verbose' -l 'verbose' -s 'v' -d 'Print more.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl grow" -eq 1' -fka '(metactl status -c 2>/dev/null | awk \'$2 != "h" {print $1}\')'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl grow" -ge 2' -F
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl grow" i' -s 'i' -d 'Interlace of a new stripe row, 8k–100m.' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl grow" wait' -l 'wait' -d 'Wait for the zeroing of new RAID-5 columns however long it takes.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl grow" f force' -l 'force' -s 'f' -d 'Overwrite devices that carry a signature (file system, partition table, …).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl grow" cancel' -l 'cancel' -d 'Release the devices of an interrupted RAID-5 grow instead of finishing it.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl grow" json' -l 'json' -d 'Print one JSON document (its schema is in this command\'s description; errors: metactl(8)).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl grow" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl grow" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl status" s set' -s 's' -l 'set' -d 'The set to act on (default: local).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl status" config-dir' -l 'config-dir' -d 'Where this host records the sets it knows (env METACTL_CONFIG_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl status" run-dir' -l 'run-dir' -d 'Sockets, PID and lock files (env METACTL_RUN_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl status" q quiet' -l 'quiet' -s 'q' -d 'Print less.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl status" v verbose' -l 'verbose' -s 'v' -d 'Print more.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl status" -ge 1' -fka '(metactl status -c 2>/dev/null | awk \'{print $1}\')'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl status" p' -s 'p' -d 'Print md.tab lines (and metactl commands) that recreate the configuration.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl status" c' -s 'c' -d 'Print one line per volume.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl status" json' -l 'json' -d 'Print one JSON document (its schema is in this command\'s description; errors: metactl(8)).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl status" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl status" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl db" -eq 1' -fa 'create' -d 'Create the state database of a set (metadb -a -f).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl db" -eq 1' -fa 'add' -d 'Add state database replicas on new devices (metadb -a).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl db" -eq 1' -fa 'delete' -d 'Delete the state database replicas on devices (metadb -d).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl db" -eq 1' -fa 'status' -d 'Show the state database replicas and the quorum (metadb -i).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db create" s set' -s 's' -l 'set' -d 'The set to act on (default: local).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db create" config-dir' -l 'config-dir' -d 'Where this host records the sets it knows (env METACTL_CONFIG_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db create" run-dir' -l 'run-dir' -d 'Sockets, PID and lock files (env METACTL_RUN_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db create" q quiet' -l 'quiet' -s 'q' -d 'Print less.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db create" v verbose' -l 'verbose' -s 'v' -d 'Print more.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db create" copies' -l 'copies' -d 'Replicas on each device (1–16).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db create" f force' -l 'force' -s 'f' -d 'Overwrite devices that carry a signature.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl db create" -ge 1' -F
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db create" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db create" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db add" s set' -s 's' -l 'set' -d 'The set to act on (default: local).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db add" config-dir' -l 'config-dir' -d 'Where this host records the sets it knows (env METACTL_CONFIG_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db add" run-dir' -l 'run-dir' -d 'Sockets, PID and lock files (env METACTL_RUN_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db add" q quiet' -l 'quiet' -s 'q' -d 'Print less.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db add" v verbose' -l 'verbose' -s 'v' -d 'Print more.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db add" copies' -l 'copies' -d 'Replicas on each device (1–16).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db add" f force' -l 'force' -s 'f' -d 'Overwrite devices that carry a signature.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl db add" -ge 1' -F
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db add" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db add" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db delete" s set' -s 's' -l 'set' -d 'The set to act on (default: local).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db delete" config-dir' -l 'config-dir' -d 'Where this host records the sets it knows (env METACTL_CONFIG_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db delete" run-dir' -l 'run-dir' -d 'Sockets, PID and lock files (env METACTL_RUN_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db delete" q quiet' -l 'quiet' -s 'q' -d 'Print less.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db delete" v verbose' -l 'verbose' -s 'v' -d 'Print more.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db delete" f force' -l 'force' -s 'f' -d 'Delete even below a safe count, or without quorum.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl db delete" -ge 1' -F
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db delete" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db delete" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db status" s set' -s 's' -l 'set' -d 'The set to act on (default: local).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db status" config-dir' -l 'config-dir' -d 'Where this host records the sets it knows (env METACTL_CONFIG_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db status" run-dir' -l 'run-dir' -d 'Sockets, PID and lock files (env METACTL_RUN_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db status" q quiet' -l 'quiet' -s 'q' -d 'Print less.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db status" v verbose' -l 'verbose' -s 'v' -d 'Print more.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db status" json' -l 'json' -d 'Print one JSON document (its schema is in this command\'s description; errors: metactl(8)).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db status" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl db status" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl import" s set' -s 's' -l 'set' -d 'The set to act on (default: local).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl import" config-dir' -l 'config-dir' -d 'Where this host records the sets it knows (env METACTL_CONFIG_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl import" run-dir' -l 'run-dir' -d 'Sockets, PID and lock files (env METACTL_RUN_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl import" q quiet' -l 'quiet' -s 'q' -d 'Print less.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl import" v verbose' -l 'verbose' -s 'v' -d 'Print more.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl import" json' -l 'json' -d 'Print one JSON document (its schema is in this command\'s description; errors: metactl(8)).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl import" no-scan' -l 'no-scan' -d 'Only look at the given paths and the registry\'s, not at every block device.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl import" -ge 1' -F
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl import" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl import" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl serve" s set' -s 's' -l 'set' -d 'The set to act on (default: local).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl serve" config-dir' -l 'config-dir' -d 'Where this host records the sets it knows (env METACTL_CONFIG_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl serve" run-dir' -l 'run-dir' -d 'Sockets, PID and lock files (env METACTL_RUN_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl serve" q quiet' -l 'quiet' -s 'q' -d 'Print less.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl serve" v verbose' -l 'verbose' -s 'v' -d 'Print more.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl serve" socket' -l 'socket' -d 'Unix socket for NBD (default <run-dir>/<set>.nbd).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl serve" listen' -l 'listen' -d 'Also listen for NBD on TCP HOST:PORT. A non-loopback HOST needs TLS (--tls-certificates or --tls-psk) or --insecure.' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl serve" tls' -l 'tls' -d 'TLS on the NBD sockets: off, allow (clients choose) or require (default: require when --tls-certificates or --tls-psk is given, else off).' -rfka 'off allow require'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl serve" tls-certificates' -l 'tls-certificates' -d 'x509 TLS: a directory with server-cert.pem and server-key.pem (and ca-cert.pem for --tls-verify-peer), as for nbdkit.' -rfa '(__metactl_complete_directories)'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl serve" tls-psk' -l 'tls-psk' -d 'Pre-shared-key TLS: a psktool file of USERNAME:HEXKEY lines; only clients holding a key connect.' -rF
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl serve" tls-verify-peer' -l 'tls-verify-peer' -d 'With --tls-certificates: accept only clients whose certificate ca-cert.pem signed.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl serve" insecure' -l 'insecure' -d 'Allow --listen on a non-loopback address without requiring TLS (anyone who reaches it can read and write).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl serve" cache' -l 'cache' -d 'Data I/O on the components: none (O_DIRECT, the default) or writeback (through the page cache; flushes still reach the disk).' -rfka 'none writeback'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl serve" read-only' -l 'read-only' -d 'Export every volume read-only (clients cannot write, trim or zero; resyncs still run).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl serve" metrics' -l 'metrics' -d 'Export Prometheus metrics: HOST:PORT serves GET /metrics; a PATH ending in .prom is rewritten every 10 s (node_exporter\'s textfile collector).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl serve" restore-maps' -l 'restore-maps' -d 'Once listening, map again every volume recorded as mapped (metactl map) whose mapping is gone.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl serve" unmap-on-exit' -l 'unmap-on-exit' -d 'At shutdown, unmap every mapped volume first (default: mappings stay and reconnect when a server returns).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl serve"' -l 'read-only-volume' -d 'Export this volume read-only (repeatable); the others stay writable.' -rfka '(metactl status -c 2>/dev/null | awk \'$2 != "h" {print $1}\')'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl serve" -ge 1' -fka '(metactl status -c 2>/dev/null | awk \'$2 != "h" {print $1}\')'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl serve" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl serve" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl replace" s set' -s 's' -l 'set' -d 'The set to act on (default: local).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl replace" config-dir' -l 'config-dir' -d 'Where this host records the sets it knows (env METACTL_CONFIG_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl replace" run-dir' -l 'run-dir' -d 'Sockets, PID and lock files (env METACTL_RUN_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl replace" q quiet' -l 'quiet' -s 'q' -d 'Print less.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl replace" v verbose' -l 'verbose' -s 'v' -d 'Print more.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl replace" -eq 1' -fka '(metactl status -c 2>/dev/null | awk \'$2 != "h" {print $1}\')'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl replace" -ge 2' -F
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl replace" enable' -l 'enable' -d 'Re-enable this component in place.' -rF
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl replace" wait' -l 'wait' -d 'Follow the resync until it ends (progress on stderr).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl replace" f force' -l 'force' -s 'f' -d 'Proceed on a Last Erred volume; overwrite a signature on NEW.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl replace" json' -l 'json' -d 'Print one JSON document (its schema is in this command\'s description; errors: metactl(8)).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl replace" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl replace" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl hs" -eq 1' -fa 'create' -d 'Create a pool, optionally with spares.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl hs" -eq 1' -fa 'add' -d 'Add spares to a pool.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl hs" -eq 1' -fa 'delete' -d 'Remove spares from a pool (or the whole pool when no device is named).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl hs" -eq 1' -fa 'enable' -d 'Return Broken spares to Available after the fault is fixed.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs create" s set' -s 's' -l 'set' -d 'The set to act on (default: local).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs create" config-dir' -l 'config-dir' -d 'Where this host records the sets it knows (env METACTL_CONFIG_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs create" run-dir' -l 'run-dir' -d 'Sockets, PID and lock files (env METACTL_RUN_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs create" q quiet' -l 'quiet' -s 'q' -d 'Print less.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs create" v verbose' -l 'verbose' -s 'v' -d 'Print more.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl hs create" -ge 1' -F
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs create" f force' -l 'force' -s 'f' -d 'Overwrite devices that carry a signature.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs create" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs create" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs add" s set' -s 's' -l 'set' -d 'The set to act on (default: local).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs add" config-dir' -l 'config-dir' -d 'Where this host records the sets it knows (env METACTL_CONFIG_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs add" run-dir' -l 'run-dir' -d 'Sockets, PID and lock files (env METACTL_RUN_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs add" q quiet' -l 'quiet' -s 'q' -d 'Print less.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs add" v verbose' -l 'verbose' -s 'v' -d 'Print more.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl hs add" -eq 1' -fka '(metactl status -c 2>/dev/null | awk \'$2 == "h" {print $1}\')'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl hs add" -ge 2' -F
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs add" f force' -l 'force' -s 'f' -d 'Overwrite devices that carry a signature.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs add" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs add" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs delete" s set' -s 's' -l 'set' -d 'The set to act on (default: local).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs delete" config-dir' -l 'config-dir' -d 'Where this host records the sets it knows (env METACTL_CONFIG_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs delete" run-dir' -l 'run-dir' -d 'Sockets, PID and lock files (env METACTL_RUN_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs delete" q quiet' -l 'quiet' -s 'q' -d 'Print less.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs delete" v verbose' -l 'verbose' -s 'v' -d 'Print more.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl hs delete" -eq 1' -fka '(metactl status -c 2>/dev/null | awk \'$2 == "h" {print $1}\')'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl hs delete" -ge 2' -F
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs delete" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs delete" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs enable" s set' -s 's' -l 'set' -d 'The set to act on (default: local).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs enable" config-dir' -l 'config-dir' -d 'Where this host records the sets it knows (env METACTL_CONFIG_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs enable" run-dir' -l 'run-dir' -d 'Sockets, PID and lock files (env METACTL_RUN_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs enable" q quiet' -l 'quiet' -s 'q' -d 'Print less.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs enable" v verbose' -l 'verbose' -s 'v' -d 'Print more.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl hs enable" -ge 1' -F
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs enable" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl hs enable" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl set" s set' -s 's' -l 'set' -d 'The set to act on (default: local).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl set" config-dir' -l 'config-dir' -d 'Where this host records the sets it knows (env METACTL_CONFIG_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl set" run-dir' -l 'run-dir' -d 'Sockets, PID and lock files (env METACTL_RUN_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl set" q quiet' -l 'quiet' -s 'q' -d 'Print less.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl set" v verbose' -l 'verbose' -s 'v' -d 'Print more.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl set" -eq 1' -fka '(metactl status -c 2>/dev/null | awk \'$2 != "h" {print $1}\')'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl set" hot-spare-pool' -l 'hot-spare-pool' -d 'Pool to use (created empty if it does not exist, as in create), or none.' -rfka '(metactl status -c 2>/dev/null | awk \'$2 == "h" {print $1}\'; echo none)'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl set" resync-rate' -l 'resync-rate' -d 'Resync rate limits per second.' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl set" write-log' -l 'write-log' -d 'RAID-5, RAID-6: log writes (auto) or not (none); switches online.' -rfka 'auto none'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl set" log-device' -l 'log-device' -d 'RAID-5, RAID-6: a device for the write log (a fast SSD), or none.' -rF
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl set" f force' -l 'force' -s 'f' -d 'With --log-device: overwrite a device that carries a signature.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl set" read-policy' -l 'read-policy' -d 'Mirror: which side serves a read (metaparam -r).' -rfka 'roundrobin geometric first'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl set" write-policy' -l 'write-policy' -d 'Mirror: write the sides at once or in turn (metaparam -w).' -rfka 'parallel serial'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl set" pass' -l 'pass' -d 'Mirror: SVM\'s pass number 0-9 (metaparam -p; recorded and shown).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl set" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl set" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl check" s set' -s 's' -l 'set' -d 'The set to act on (default: local).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl check" config-dir' -l 'config-dir' -d 'Where this host records the sets it knows (env METACTL_CONFIG_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl check" run-dir' -l 'run-dir' -d 'Sockets, PID and lock files (env METACTL_RUN_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl check" q quiet' -l 'quiet' -s 'q' -d 'Print less.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl check" v verbose' -l 'verbose' -s 'v' -d 'Print more.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl check" -eq 1' -fka '(metactl status -c 2>/dev/null | awk \'$2 != "h" {print $1}\')'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl check" repair' -l 'repair' -d 'Rewrite the parity of the lines where it does not match the data (a mirror: the other sides from the first).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl check" stop' -l 'stop' -d 'Stop the running check.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl check" wait' -l 'wait' -d 'Follow the check until it ends (progress on stderr).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl check" json' -l 'json' -d 'Print one JSON document (its schema is in this command\'s description; errors: metactl(8)).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl check" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl check" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl recover" s set' -s 's' -l 'set' -d 'The set to act on (default: local).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl recover" config-dir' -l 'config-dir' -d 'Where this host records the sets it knows (env METACTL_CONFIG_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl recover" run-dir' -l 'run-dir' -d 'Sockets, PID and lock files (env METACTL_RUN_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl recover" q quiet' -l 'quiet' -s 'q' -d 'Print less.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl recover" v verbose' -l 'verbose' -s 'v' -d 'Print more.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl recover" -eq 1' -fka '(metactl status -c 2>/dev/null | awk \'$2 != "h" {print $1}\')'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl recover" dry-run n' -s 'n' -l 'dry-run' -d 'List what would be recovered; change nothing.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl recover" json' -l 'json' -d 'Print one JSON document (its schema is in this command\'s description; errors: metactl(8)).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl recover" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl recover" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl attach" s set' -s 's' -l 'set' -d 'The set to act on (default: local).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl attach" config-dir' -l 'config-dir' -d 'Where this host records the sets it knows (env METACTL_CONFIG_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl attach" run-dir' -l 'run-dir' -d 'Sockets, PID and lock files (env METACTL_RUN_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl attach" q quiet' -l 'quiet' -s 'q' -d 'Print less.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl attach" v verbose' -l 'verbose' -s 'v' -d 'Print more.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl attach" -eq 1' -fka '(metactl status -c 2>/dev/null | awk \'$2 != "h" {print $1}\')'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl attach" -eq 2' -fka '(metactl status -c 2>/dev/null | awk \'$2 != "h" {print $1}\')'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl attach" no-resync' -l 'no-resync' -d 'The side holds the mirror\'s data already: no resync.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl attach" f force' -l 'force' -s 'f' -d 'Attach even while clients have the volume open (they are disconnected).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl attach" json' -l 'json' -d 'Print one JSON document (its schema is in this command\'s description; errors: metactl(8)).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl attach" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl attach" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl detach" s set' -s 's' -l 'set' -d 'The set to act on (default: local).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl detach" config-dir' -l 'config-dir' -d 'Where this host records the sets it knows (env METACTL_CONFIG_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl detach" run-dir' -l 'run-dir' -d 'Sockets, PID and lock files (env METACTL_RUN_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl detach" q quiet' -l 'quiet' -s 'q' -d 'Print less.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl detach" v verbose' -l 'verbose' -s 'v' -d 'Print more.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl detach" -eq 1' -fka '(metactl status -c 2>/dev/null | awk \'$2 != "h" {print $1}\')'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl detach" -eq 2' -fka '(metactl status -c 2>/dev/null | awk \'$2 != "h" {print $1}\')'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl detach" f force' -l 'force' -s 'f' -d 'Detach a side that is not Okay.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl detach" json' -l 'json' -d 'Print one JSON document (its schema is in this command\'s description; errors: metactl(8)).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl detach" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl detach" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl offline" s set' -s 's' -l 'set' -d 'The set to act on (default: local).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl offline" config-dir' -l 'config-dir' -d 'Where this host records the sets it knows (env METACTL_CONFIG_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl offline" run-dir' -l 'run-dir' -d 'Sockets, PID and lock files (env METACTL_RUN_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl offline" q quiet' -l 'quiet' -s 'q' -d 'Print less.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl offline" v verbose' -l 'verbose' -s 'v' -d 'Print more.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl offline" -eq 1' -fka '(metactl status -c 2>/dev/null | awk \'$2 != "h" {print $1}\')'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl offline" -eq 2' -fka '(metactl status -c 2>/dev/null | awk \'$2 != "h" {print $1}\')'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl offline" json' -l 'json' -d 'Print one JSON document (its schema is in this command\'s description; errors: metactl(8)).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl offline" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl offline" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl online" s set' -s 's' -l 'set' -d 'The set to act on (default: local).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl online" config-dir' -l 'config-dir' -d 'Where this host records the sets it knows (env METACTL_CONFIG_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl online" run-dir' -l 'run-dir' -d 'Sockets, PID and lock files (env METACTL_RUN_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl online" q quiet' -l 'quiet' -s 'q' -d 'Print less.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl online" v verbose' -l 'verbose' -s 'v' -d 'Print more.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl online" -eq 1' -fka '(metactl status -c 2>/dev/null | awk \'$2 != "h" {print $1}\')'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl online" -eq 2' -fka '(metactl status -c 2>/dev/null | awk \'$2 != "h" {print $1}\')'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl online" json' -l 'json' -d 'Print one JSON document (its schema is in this command\'s description; errors: metactl(8)).'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl online" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl online" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl monitor" s set' -s 's' -l 'set' -d 'The set to act on (default: local).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl monitor" config-dir' -l 'config-dir' -d 'Where this host records the sets it knows (env METACTL_CONFIG_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl monitor" run-dir' -l 'run-dir' -d 'Sockets, PID and lock files (env METACTL_RUN_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl monitor" q quiet' -l 'quiet' -s 'q' -d 'Print less.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl monitor" v verbose' -l 'verbose' -s 'v' -d 'Print more.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl monitor" json' -l 'json' -d 'Print one JSON object per line.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl monitor" program' -l 'program' -d 'Run this shell command for every event (the event in its environment).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl monitor" replay' -l 'replay' -d 'First print up to N of the most recent events (at most 64).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl monitor" count' -l 'count' -d 'Exit after N events.' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl monitor" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl monitor" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl map" s set' -s 's' -l 'set' -d 'The set to act on (default: local).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl map" config-dir' -l 'config-dir' -d 'Where this host records the sets it knows (env METACTL_CONFIG_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl map" run-dir' -l 'run-dir' -d 'Sockets, PID and lock files (env METACTL_RUN_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl map" q quiet' -l 'quiet' -s 'q' -d 'Print less.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl map" v verbose' -l 'verbose' -s 'v' -d 'Print more.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_positional "metactl map" -eq 1' -fka '(metactl status -c 2>/dev/null | awk \'$2 != "h" {print $1}\')'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl map" read-only' -l 'read-only' -d 'Map read-only.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl map" socket' -l 'socket' -d 'The server\'s NBD Unix socket (default <run-dir>/<set>.nbd).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl map" reconnect-timeout' -l 'reconnect-timeout' -d 'Seconds a request waits for an absent server before it fails with EIO (default 60).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl map" tls-certificates' -l 'tls-certificates' -d 'A server with --tls require and x509: connect with TLS, trusting DIR/ca-cert.pem (and presenting DIR/client-cert.pem when it has one).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl map" tls-psk' -l 'tls-psk' -d 'A server with --tls require and PSK: connect with TLS using the key of --tls-username in FILE (psktool\'s format).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl map" tls-username' -l 'tls-username' -d 'The PSK user (default: the current user).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl map" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl map" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl unmap" s set' -s 's' -l 'set' -d 'The set to act on (default: local).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl unmap" config-dir' -l 'config-dir' -d 'Where this host records the sets it knows (env METACTL_CONFIG_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl unmap" run-dir' -l 'run-dir' -d 'Sockets, PID and lock files (env METACTL_RUN_DIR).' -rfka ''
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl unmap" q quiet' -l 'quiet' -s 'q' -d 'Print less.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl unmap" v verbose' -l 'verbose' -s 'v' -d 'Print more.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl unmap" f force' -l 'force' -s 'f' -d 'Unmap even while the device is in use.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl unmap" version' -l 'version' -d 'Show the version.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl unmap" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'metactl' -n '__metactl_should_offer_completions_for_flags_or_options "metactl help" version' -l 'version' -d 'Show the version.'
