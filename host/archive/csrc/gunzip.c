/*
 * A narrow C face over ISA-L's igzip inflate for the layer decompressor (src/apply/gunzip.rs):
 * the inflate state is allocated and its fields are set here, where the compiler knows the
 * layout of `struct inflate_state` from the installed header, so the Rust side never mirrors it.
 */
#include <stdint.h>
#include <stdlib.h>

#include <isa-l/igzip_lib.h>

/*
 * The inflate state and the gzip header being parsed. isal_inflate can parse the header itself,
 * but keeps what it has parsed of it in a local between calls, so a header split across two
 * inputs is misread; isal_read_gzip_header with a header struct that lives on does not.
 */
struct rcontainerd_gunzip {
	struct inflate_state state;
	struct isal_gzip_header header;
};

/* A fresh state at the start of a gzip member; NULL without memory. */
struct rcontainerd_gunzip *rcontainerd_gunzip_new(void)
{
	struct rcontainerd_gunzip *g = malloc(sizeof(*g));

	if (g) {
		isal_inflate_init(&g->state);
		g->state.crc_flag = ISAL_GZIP;
		/* No buffers for the name, comment and extra field: they are skipped. */
		isal_gzip_header_init(&g->header);
	}
	return g;
}

/* Ready for the next member of a multi-member stream (the gzip flag is kept). */
void rcontainerd_gunzip_reset(struct rcontainerd_gunzip *g)
{
	isal_inflate_reset(&g->state);
	isal_gzip_header_init(&g->header);
}

void rcontainerd_gunzip_free(struct rcontainerd_gunzip *g)
{
	free(g);
}

/*
 * Inflates from `in` into `out`. Reports how much of each was used and whether the member ended
 * (its trailer checked and all its output delivered). Returns ISA-L's status: negative for a
 * corrupt stream.
 */
int rcontainerd_gunzip_step(struct rcontainerd_gunzip *g, const uint8_t *in, uint32_t in_len,
			    uint32_t *in_used, uint8_t *out, uint32_t out_len,
			    uint32_t *out_made, int *finished)
{
	struct inflate_state *state = &g->state;
	int ret = ISAL_DECOMP_OK;

	/* ISA-L only reads through next_in. */
	state->next_in = (uint8_t *)in;
	state->avail_in = in_len;
	state->next_out = out;
	state->avail_out = out_len;
	/* wrapper_flag is set once the header is parsed, and cleared by a reset. */
	if (!state->wrapper_flag) {
		ret = isal_read_gzip_header(state, &g->header);
		/* Positive: the header needs more input, which is not an error. */
		if (ret > 0)
			ret = ISAL_DECOMP_OK;
	}
	if (ret == ISAL_DECOMP_OK && state->wrapper_flag)
		ret = isal_inflate(state);
	*in_used = in_len - state->avail_in;
	*out_made = out_len - state->avail_out;
	*finished = state->block_state == ISAL_BLOCK_FINISH;
	return ret;
}
