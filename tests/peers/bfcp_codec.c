/*
 * bfcp_codec: libre's BFCP (RFC 8855) message codec as a command-line tool,
 * an encoder and decoder independent of ours for the tests
 * (tests/mrf/bfcp/test_message.py, tests/interop/test_bfcp.py).
 *
 *   bfcp_codec decode HEX...    decode each argument: one or more messages
 *   bfcp_codec decode -         decode standard input (hex, any whitespace)
 *                               as one byte stream, e.g. one TCP direction
 *   bfcp_codec floorrequest CONFID TID USERID FLOOR-ID [VERSION]
 *   bfcp_codec floorrelease CONFID TID USERID FLOOR-REQUEST-ID [VERSION]
 *   bfcp_codec hello        CONFID TID USERID [VERSION]
 *                               print libre's encoding as one hex line
 *
 * decode prints, per message, "message N: SIZE bytes", libre's own text of
 * it (bfcp_msg_print) and, when libre saw unknown attributes with the M bit,
 * a line "unknown mandatory attribute types: T...".
 * Exit status: 0 done, 1 libre refused to decode or encode, 2 bad usage.
 *
 * Build (tests.peers.build_bfcp_codec):
 *   gcc -DHAVE_INTTYPES_H -DHAVE_STDBOOL_H bfcp_codec.c $(pkg-config --cflags --libs libre)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <re.h>

enum { EXIT_REFUSED = 1, EXIT_USAGE = 2 };

static int usage(void)
{
	fprintf(stderr, "usage: bfcp_codec decode HEX...|- | floorrequest|floorrelease "
		"CONFID TID USERID VALUE [VERSION] | hello CONFID TID USERID [VERSION]\n");
	return EXIT_USAGE;
}

static int nibble(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Append the bytes spelled by `text` (hex digits, whitespace ignored) to mb. */
static int append_hex(struct mbuf *mb, const char *text, size_t len)
{
	int high = -1;

	for (size_t i = 0; i < len; i++) {
		int value;

		if (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')
			continue;
		value = nibble((unsigned char)text[i]);
		if (value < 0)
			return EINVAL;
		if (high < 0) {
			high = value;
			continue;
		}
		if (mbuf_write_u8(mb, (uint8_t)(high << 4 | value)))
			return ENOMEM;
		high = -1;
	}
	return high < 0 ? 0 : EINVAL;  /* an odd number of digits */
}

/* All of standard input, then its hex (a digit pair may span two reads). */
static int append_stdin(struct mbuf *mb)
{
	struct mbuf *text = mbuf_alloc(4096);
	char block[4096];
	size_t n;
	int err = text ? 0 : ENOMEM;

	while (!err && (n = fread(block, 1, sizeof(block), stdin)) > 0)
		err = mbuf_write_mem(text, (uint8_t *)block, n);
	if (!err)
		err = append_hex(mb, (const char *)text->buf, text->end);
	mem_deref(text);
	return err;
}

static int decode_all(struct mbuf *mb, int *count)
{
	mb->pos = 0;
	while (mbuf_get_left(mb) > 0) {
		struct bfcp_msg *msg = NULL;
		size_t start = mb->pos;
		int err = bfcp_msg_decode(&msg, mb);

		if (err) {
			re_fprintf(stderr, "libre cannot decode the message at byte %zu: %m\n",
				   start, err);
			return EXIT_REFUSED;
		}
		re_printf("message %d: %zu bytes\n%H\n", ++*count, mb->pos - start,
			  bfcp_msg_print, msg);
		if (msg->uma.typec) {
			re_printf("unknown mandatory attribute types:");
			for (size_t i = 0; i < msg->uma.typec; i++)
				re_printf(" %u", msg->uma.typev[i]);
			re_printf("\n");
		}
		mem_deref(msg);
	}
	return 0;
}

static int decode(int argc, char *argv[])
{
	int count = 0, rc = 0;
	struct mbuf *mb = mbuf_alloc(4096);

	if (!mb)
		return EXIT_REFUSED;
	if (argc == 1 && !strcmp(argv[0], "-")) {
		if (append_stdin(mb)) {
			fprintf(stderr, "standard input is not hex\n");
			rc = EXIT_USAGE;
		}
		else {
			rc = decode_all(mb, &count);
		}
	}
	for (int i = 0; !rc && i < argc && strcmp(argv[0], "-"); i++) {
		mbuf_reset(mb);
		if (append_hex(mb, argv[i], strlen(argv[i]))) {
			fprintf(stderr, "argument %d is not hex\n", i + 1);
			rc = EXIT_USAGE;
			break;
		}
		rc = decode_all(mb, &count);
	}
	mem_deref(mb);
	return rc;
}

static int number(const char *text, unsigned long max, unsigned long *value)
{
	char *end;

	errno = 0;
	*value = strtoul(text, &end, 10);
	return errno || *end || end == text || *value > max ? EINVAL : 0;
}

/* floorrequest, floorrelease (one 16-bit attribute) and hello (none) */
static int encode(const char *what, int argc, char *argv[])
{
	bool hello = !strcmp(what, "hello");
	int fixed = hello ? 3 : 4;
	unsigned long confid, tid, userid, value = 0, version = 1;
	uint16_t attribute;
	struct mbuf *mb;
	int err;

	if (argc != fixed && argc != fixed + 1)
		return usage();
	if (number(argv[0], 0xffffffffUL, &confid) || number(argv[1], 0xffff, &tid)
	    || number(argv[2], 0xffff, &userid)
	    || (!hello && number(argv[3], 0xffff, &value))
	    || (argc > fixed && (number(argv[fixed], 2, &version) || !version)))
		return usage();
	mb = mbuf_alloc(64);
	if (!mb)
		return EXIT_REFUSED;
	attribute = (uint16_t)value;
	if (hello)
		err = bfcp_msg_encode(mb, (uint8_t)version, false, BFCP_HELLO, (uint32_t)confid,
				      (uint16_t)tid, (uint16_t)userid, 0);
	else if (!strcmp(what, "floorrequest"))
		err = bfcp_msg_encode(mb, (uint8_t)version, false, BFCP_FLOOR_REQUEST,
				      (uint32_t)confid, (uint16_t)tid, (uint16_t)userid, 1,
				      BFCP_FLOOR_ID | BFCP_MANDATORY, 0, &attribute);
	else
		err = bfcp_msg_encode(mb, (uint8_t)version, false, BFCP_FLOOR_RELEASE,
				      (uint32_t)confid, (uint16_t)tid, (uint16_t)userid, 1,
				      BFCP_FLOOR_REQUEST_ID | BFCP_MANDATORY, 0, &attribute);
	if (err) {
		re_fprintf(stderr, "libre cannot encode %s: %m\n", what, err);
		mem_deref(mb);
		return EXIT_REFUSED;
	}
	for (size_t i = 0; i < mb->end; i++)
		printf("%02x", mb->buf[i]);
	printf("\n");
	mem_deref(mb);
	return 0;
}

int main(int argc, char *argv[])
{
	int rc;

	if (argc < 3)
		return usage();
	if (libre_init())
		return EXIT_REFUSED;
	if (!strcmp(argv[1], "decode"))
		rc = decode(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "floorrequest") || !strcmp(argv[1], "floorrelease")
		 || !strcmp(argv[1], "hello"))
		rc = encode(argv[1], argc - 2, argv + 2);
	else
		rc = usage();
	libre_close();
	return rc;
}
