/* The warnings of warnings.h. Kept apart from main.c so that a test can ask
 * what a config would be warned about without starting anything. */
#include "warnings.h"

#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>

#include "spec.h"
#include "xalloc.h"

bool warnings_listen_is_loopback(const char *listen)
{
    char host[INET6_ADDRSTRLEN];
    const char *start = listen, *end;
    if (listen[0] == '[') {
        start = listen + 1;
        end = strchr(start, ']');
    } else {
        end = strrchr(listen, ':');
    }
    if (!end || end == start || (size_t)(end - start) >= sizeof(host))
        return false;
    memcpy(host, start, (size_t)(end - start));
    host[end - start] = '\0';

    struct in_addr v4;
    struct in6_addr v6;
    if (strcmp(host, "localhost") == 0)
        return true;
    if (listen[0] != '[')
        return inet_pton(AF_INET, host, &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &v6) != 1)
        return false;
    return IN6_IS_ADDR_LOOPBACK(&v6) || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
}

bool warnings_user_can_read(const struct stat *st, uid_t uid, const gid_t *groups, int ngroups)
{
    if (uid == 0 || (st->st_uid == uid && (st->st_mode & S_IRUSR)))
        return true;
    if (st->st_uid == uid)
        return false; /* the owner gets the owner's bits, not the group's */
    for (int i = 0; i < ngroups; i++)
        if (groups[i] == st->st_gid)
            return (st->st_mode & S_IRGRP) != 0;
    return false;
}

/* As root with [supervisor] user, the supervisor reads the token file and
 * finds it good, but the renderer reads it as that user: it would not
 * start. A warning, not an error: an ACL may let the user read it. */
static char *warnings_token_file(const struct config *cfg, uid_t euid)
{
    const char *path = cfg->renderer.auth_token_file, *user = cfg->supervisor.user;
    struct stat st;
    if (euid != 0 || !path || !path[0] || !user || !user[0] || stat(path, &st) < 0)
        return NULL;
    struct passwd *pw = getpwnam(user);
    if (!pw)
        return NULL;
    gid_t groups[64];
    int n = (int)(sizeof(groups) / sizeof(groups[0]));
    if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
        n = (int)(sizeof(groups) / sizeof(groups[0]));
    if (warnings_user_can_read(&st, pw->pw_uid, groups, n))
        return NULL;
    return xasprintf("the renderer runs as the children's user, who cannot read auth_token_file by its mode and "
                     "owner, so it would not start; make the file root:%s mode 0640 "
                     "path=%s user=%s mode=%04o",
                     user, path, user, (unsigned)(st.st_mode & 07777));
}

static void warnings_add(struct warnings *w, char *text)
{
    if (w->count < WARNINGS_MAX)
        w->text[w->count++] = text;
    else
        free(text);
}

void warnings_collect(struct warnings *w, const struct config *cfg, uid_t euid)
{
    memset(w, 0, sizeof(*w));
    uid_t uid;
    (void)spec_browsers_uid(cfg, euid, &uid); /* an unknown user is a config error of its own */
    switch (spec_sandbox(&cfg->browsers.command, uid)) {
    case SPEC_SANDBOX_OFF_ROOT:
        warnings_add(w, xasprintf("browsers run as root: Chromium's sandbox is off (--no-sandbox is added); "
                                  "set [supervisor] user to an unprivileged user to turn it on "
                                  "sandbox=off reason=root"));
        break;
    case SPEC_SANDBOX_OFF_COMMAND:
        warnings_add(w, xasprintf("the browsers' command has --no-sandbox: Chromium's sandbox is off although "
                                  "they do not run as root; take --no-sandbox out of [browsers] command to turn "
                                  "it on sandbox=off reason=command uid=%u",
                                  (unsigned)uid));
        break;
    case SPEC_SANDBOX_ON:
        break;
    }
    /* "-" is what Grafana sends when its renderer_token is left as it is:
     * anyone can send it, whatever other tokens there are. */
    bool dash = false;
    for (size_t i = 0; cfg->renderer.tokens && cfg->renderer.tokens[i]; i++)
        dash = dash || strcmp(cfg->renderer.tokens[i], "-") == 0;
    if (dash && cfg->renderer.listen[0] &&
        !warnings_listen_is_loopback(cfg->renderer.listen))
        warnings_add(w, xasprintf("the renderer takes Grafana's default auth_token - on an address beyond "
                                  "loopback, so anyone who reaches it can have pages rendered; set auth_token "
                                  "to Grafana's [rendering] renderer_token, or listen on 127.0.0.1 "
                                  "listen=%s auth_token=default",
                                  cfg->renderer.listen));
    char *text = warnings_token_file(cfg, euid);
    if (text)
        warnings_add(w, text);
}

void warnings_fini(struct warnings *w)
{
    for (size_t i = 0; i < w->count; i++)
        free(w->text[i]);
    memset(w, 0, sizeof(*w));
}
