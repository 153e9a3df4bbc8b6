/* Unit tests for store/inbox.c: records read back from the store. */
#include <string.h>

#include "store/inbox.h"
#include "unit.h"

/* Found by fuzz_records: a stored record that held a "seq" of its own kept
 * it first, and readers (sioh_event.seq, sioctl listen) took it for the
 * record's number. */
TEST(parse_sets_the_store_seq) {
    static const char rec[] = "{\"type\":\"event\",\"seq\":\"x\",\"seq\":7,\"args\":[]}";
    cJSON *o = inbox_parse(42, rec, sizeof rec - 1);
    ASSERT_TRUE(o != NULL);
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(o, "seq");
    ASSERT_TRUE(cJSON_IsNumber(seq));
    ASSERT_EQ_INT((int)seq->valuedouble, 42);
    int n = 0;
    for (const cJSON *c = o->child; c; c = c->next) n += !strcmp(c->string, "seq");
    ASSERT_EQ_INT(n, 1);
    cJSON_Delete(o);
}

TEST(parse_refuses_what_is_not_an_object) {
    static const char *const bad[] = {"[1]", "\"x\"", "", "{", "{\"a\":1}x", "null"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        UNIT_CTX("%s", bad[i]);
        ASSERT_TRUE(inbox_parse(1, bad[i], strlen(bad[i])) == NULL);
    }
}

UNIT_MAIN()
