/* The warnings of warnings.h. Kept apart from main.c so that a test can ask
 * what a config would be warned about without starting anything. */
#include "warnings.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
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
}

void warnings_fini(struct warnings *w)
{
    for (size_t i = 0; i < w->count; i++)
        free(w->text[i]);
    memset(w, 0, sizeof(*w));
}
