#!/bin/sh
# The five people of the interop scenario, keyed by the `sub` claim of their identity provider
# (applications send it as subject.id), with their e-mail addresses and roles.
# Run after `accessd policy load examples/authzen-todo/policy`: roles are checked against it.
set -eu
ACCESSD="${ACCESSD:-accessd}"

person() { # SUB NAME EMAIL ROLE...
  sub="$1" name="$2" email="$3"
  shift 3
  "$ACCESSD" account add "$sub" --name "$name" --email "$email"
  for role in "$@"; do
    "$ACCESSD" account grant "$sub" "$role"
  done
}

person CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs "Rick Sanchez" rick@the-citadel.com admin evil_genius
person CiRmZDE2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs "Morty Smith" morty@the-citadel.com editor
person CiRmZDI2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs "Summer Smith" summer@the-smiths.com editor
person CiRmZDM2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs "Beth Smith" beth@the-smiths.com viewer
person CiRmZDQ2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs "Jerry Smith" jerry@the-smiths.com viewer
